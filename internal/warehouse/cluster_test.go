package warehouse_test

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/schema"
)

// planned is a cluster planned over one materialized view from the sharded
// events, as the shipped schema has.
func planned(t *testing.T) *warehouse.Cluster {
	t.Helper()
	c, err := warehouse.NewCluster("c", []warehouse.Migration{{Name: "001.sql", Text: `
CREATE MATERIALIZED VIEW IF NOT EXISTS ikd.residents_daily_mv TO ikd.residents_daily AS
SELECT type, uniqExactState(resident) AS residents FROM ikd.events GROUP BY type;
CREATE MATERIALIZED VIEW ikd.weekly_mv TO ikd.weekly AS SELECT * FROM ikd.residents_daily;
CREATE TABLE ikd.ledger (resident String, first_at DateTime, PROJECTION by_time (SELECT * ORDER BY first_at))
ENGINE = ReplacingMergeTree ORDER BY resident;
CREATE MATERIALIZED VIEW ikd.ledger_mv TO ikd.ledger AS SELECT resident, min(occurred_at) AS first_at FROM ikd.events GROUP BY resident;
`}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rewriteCases are representative statements and their cluster forms (the
// cluster "c" of planned), or a part of the refusal.
var rewriteCases = []struct {
	name string
	in   string
	want []string
	err  string
}{
	{name: "database", in: "CREATE DATABASE IF NOT EXISTS ikd",
		want: []string{"CREATE DATABASE IF NOT EXISTS ikd ON CLUSTER c"}},
	{name: "a small table is whole on every node",
		in:   "CREATE TABLE IF NOT EXISTS ikd.provinces (code String) ENGINE = ReplacingMergeTree ORDER BY code",
		want: []string{"CREATE TABLE IF NOT EXISTS ikd.provinces ON CLUSTER c (code String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/ikd/provinces', '{replica}') ORDER BY code"}},
	{name: "engine arguments are kept after the replication ones",
		in:   "CREATE TABLE ikd.targets (v UInt8, updated_at DateTime) ENGINE = ReplacingMergeTree(updated_at) ORDER BY v",
		want: []string{"CREATE TABLE ikd.targets ON CLUSTER c (v UInt8, updated_at DateTime) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/ikd/targets', '{replica}', updated_at) ORDER BY v"}},
	{name: "a sharded table becomes a local table under a Distributed one of its name",
		in: "CREATE TABLE IF NOT EXISTS ikd.events (event_id String, resident String) ENGINE = ReplacingMergeTree ORDER BY event_id SETTINGS non_replicated_deduplication_window = 1000",
		want: []string{
			"CREATE TABLE IF NOT EXISTS ikd.events_local ON CLUSTER c (event_id String, resident String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ikd/events_local', '{replica}') ORDER BY event_id SETTINGS replicated_deduplication_window = 1000",
			"CREATE TABLE IF NOT EXISTS ikd.events ON CLUSTER c AS ikd.events_local ENGINE = Distributed('c', 'ikd', 'events_local', cityHash64(resident))",
		}},
	{name: "a table a view fills from a sharded one, without the key's columns, takes rows on any shard",
		in: "CREATE TABLE ikd.residents_daily (type String, residents AggregateFunction(uniqExact, String)) ENGINE = AggregatingMergeTree ORDER BY type",
		want: []string{
			"CREATE TABLE ikd.residents_daily_local ON CLUSTER c (type String, residents AggregateFunction(uniqExact, String)) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/ikd/residents_daily_local', '{replica}') ORDER BY type",
			"CREATE TABLE ikd.residents_daily ON CLUSTER c AS ikd.residents_daily_local ENGINE = Distributed('c', 'ikd', 'residents_daily_local', rand())",
		}},
	{name: "sharding follows chains of views", in: "CREATE TABLE ikd.weekly (n UInt8) ENGINE = MergeTree ORDER BY n",
		want: []string{
			"CREATE TABLE ikd.weekly_local ON CLUSTER c (n UInt8) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ikd/weekly_local', '{replica}') ORDER BY n",
			"CREATE TABLE ikd.weekly ON CLUSTER c AS ikd.weekly_local ENGINE = Distributed('c', 'ikd', 'weekly_local', rand())",
		}},
	{name: "a table a view fills from a sharded one, with the key's columns, is sharded by the same key",
		in: "CREATE TABLE ikd.ledger (resident String, first_at DateTime, PROJECTION by_time (SELECT * ORDER BY first_at)) ENGINE = ReplacingMergeTree ORDER BY resident",
		want: []string{
			"CREATE TABLE ikd.ledger_local ON CLUSTER c (resident String, first_at DateTime, PROJECTION by_time (SELECT * ORDER BY first_at)) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ikd/ledger_local', '{replica}') ORDER BY resident",
			"CREATE TABLE ikd.ledger ON CLUSTER c AS ikd.ledger_local ENGINE = Distributed('c', 'ikd', 'ledger_local', cityHash64(resident))",
		}},
	{name: "projections and columns named like clauses stay in the table",
		in:   "CREATE TABLE ikd.projected (resident String, engine String DEFAULT 'ENGINE = MergeTree', PROJECTION by_day (SELECT resident ORDER BY engine)) ENGINE = MergeTree ORDER BY resident",
		want: []string{"CREATE TABLE ikd.projected ON CLUSTER c (resident String, engine String DEFAULT 'ENGINE = MergeTree', PROJECTION by_day (SELECT resident ORDER BY engine)) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/ikd/projected', '{replica}') ORDER BY resident"}},
	{name: "the first-seen ledger is sharded by its resident",
		in: "CREATE TABLE IF NOT EXISTS ikd.first_seen (type String, resident FixedString(16), day Date, sign Int8, PROJECTION daily (SELECT type, day, sum(sign) GROUP BY type, day)) ENGINE = MergeTree ORDER BY (type, resident) SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 1000",
		want: []string{
			"CREATE TABLE IF NOT EXISTS ikd.first_seen_local ON CLUSTER c (type String, resident FixedString(16), day Date, sign Int8, PROJECTION daily (SELECT type, day, sum(sign) GROUP BY type, day)) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ikd/first_seen_local', '{replica}') ORDER BY (type, resident) SETTINGS index_granularity = 1024, replicated_deduplication_window = 1000",
			"CREATE TABLE IF NOT EXISTS ikd.first_seen ON CLUSTER c AS ikd.first_seen_local ENGINE = Distributed('c', 'ikd', 'first_seen_local', cityHash64(resident))",
		}},
	{name: "comments and strings are not read as SQL",
		in:   "-- ENGINE = MergeTree\nCREATE TABLE ikd.notes (s String DEFAULT 'ikd.events') /* ENGINE = Log */ ENGINE = Memory",
		want: []string{"-- ENGINE = MergeTree\nCREATE TABLE ikd.notes ON CLUSTER c (s String DEFAULT 'ikd.events') /* ENGINE = Log */ ENGINE = Memory"}},
	{name: "escaped quotes do not end a string",
		in:   `CREATE TABLE ikd.quotes (a String DEFAULT 'it\'s (', b String DEFAULT 'a''b ENGINE = Log') ENGINE = MergeTree ORDER BY a`,
		want: []string{`CREATE TABLE ikd.quotes ON CLUSTER c (a String DEFAULT 'it\'s (', b String DEFAULT 'a''b ENGINE = Log') ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/ikd/quotes', '{replica}') ORDER BY a`}},
	{name: "a materialized view from a sharded table runs on each shard's local tables",
		in:   "CREATE MATERIALIZED VIEW IF NOT EXISTS ikd.residents_daily_mv TO ikd.residents_daily AS SELECT uniqExactState(resident) AS residents FROM ikd.events GROUP BY type",
		want: []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS ikd.residents_daily_mv ON CLUSTER c TO ikd.residents_daily_local AS SELECT uniqExactState(resident) AS residents FROM ikd.events_local GROUP BY type"}},
	{name: "a view reads the Distributed tables",
		in:   "CREATE OR REPLACE VIEW ikd.attainment AS WITH {as_of:Date} AS d SELECT count() FROM ikd.residents_daily AS r FINAL WHERE r.day <= d",
		want: []string{"CREATE OR REPLACE VIEW ikd.attainment ON CLUSTER c AS WITH {as_of:Date} AS d SELECT count() FROM ikd.residents_daily AS r FINAL WHERE r.day <= d"}},
	{name: "a column change reaches the local and the Distributed table",
		in: "ALTER TABLE ikd.events ADD COLUMN IF NOT EXISTS key_id String DEFAULT '' AFTER resident",
		want: []string{
			"ALTER TABLE ikd.events_local ON CLUSTER c ADD COLUMN IF NOT EXISTS key_id String DEFAULT '' AFTER resident",
			"ALTER TABLE ikd.events ON CLUSTER c ADD COLUMN IF NOT EXISTS key_id String DEFAULT '' AFTER resident",
		}},
	{name: "a projection or setting change is the local table's alone",
		in:   "ALTER TABLE ikd.events ADD PROJECTION p (SELECT resident ORDER BY resident), MODIFY SETTING non_replicated_deduplication_window = 10",
		want: []string{"ALTER TABLE ikd.events_local ON CLUSTER c ADD PROJECTION p (SELECT resident ORDER BY resident), MODIFY SETTING replicated_deduplication_window = 10"}},
	{name: "an unsharded table's setting", in: "ALTER TABLE ikd.alerts MODIFY SETTING non_replicated_deduplication_window = 10000",
		want: []string{"ALTER TABLE ikd.alerts ON CLUSTER c MODIFY SETTING replicated_deduplication_window = 10000"}},
	{name: "a dropped sharded table goes with its local table", in: "DROP TABLE IF EXISTS ikd.events SYNC",
		want: []string{"DROP TABLE IF EXISTS ikd.events ON CLUSTER c SYNC", "DROP TABLE IF EXISTS ikd.events_local ON CLUSTER c SYNC"}},
	{name: "optimize acts on the local table", in: "OPTIMIZE TABLE ikd.events FINAL",
		want: []string{"OPTIMIZE TABLE ikd.events_local ON CLUSTER c FINAL"}},
	{name: "a lightweight delete acts on the local table", in: "DELETE FROM ikd.events WHERE resident = ''",
		want: []string{"DELETE FROM ikd.events_local ON CLUSTER c WHERE resident = ''"}},
	{name: "a view running on the shards gets a new query over the local tables",
		in:   "ALTER TABLE ikd.residents_daily_mv MODIFY QUERY SELECT type, uniqExactState(resident) AS residents FROM ikd.events GROUP BY type",
		want: []string{"ALTER TABLE ikd.residents_daily_mv ON CLUSTER c MODIFY QUERY SELECT type, uniqExactState(resident) AS residents FROM ikd.events_local GROUP BY type"}},
	{name: "truncate", in: "TRUNCATE TABLE IF EXISTS ikd.targets", want: []string{"TRUNCATE TABLE IF EXISTS ikd.targets ON CLUSTER c"}},
	{name: "an insert goes through the Distributed table", in: "INSERT INTO ikd.events (event_id) SELECT 'x'",
		want: []string{"INSERT INTO ikd.events (event_id) SELECT 'x'"}},
	{name: "backquoted names", in: "CREATE TABLE `ikd`.`events` (resident String) ENGINE = MergeTree ORDER BY resident",
		want: []string{
			"CREATE TABLE ikd.events_local ON CLUSTER c (resident String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ikd/events_local', '{replica}') ORDER BY resident",
			"CREATE TABLE ikd.events ON CLUSTER c AS ikd.events_local ENGINE = Distributed('c', 'ikd', 'events_local', cityHash64(resident))",
		}},
	{name: "mixed column and other changes of a sharded table", in: "ALTER TABLE ikd.events ADD COLUMN x UInt8, MODIFY SETTING index_granularity = 1", err: "separate ALTERs"},
	{name: "a statement naming its own cluster", in: "CREATE TABLE ikd.t ON CLUSTER other (n UInt8) ENGINE = MergeTree ORDER BY n", err: "already names a cluster"},
	{name: "an engine already replicated", in: "CREATE TABLE ikd.t (n UInt8) ENGINE = ReplicatedMergeTree ORDER BY n", err: "already replicated"},
	{name: "a table without its database", in: "CREATE TABLE t (n UInt8) ENGINE = MergeTree ORDER BY n", err: "name the database"},
	{name: "a materialized view with an inner table", in: "CREATE MATERIALIZED VIEW ikd.v ENGINE = MergeTree ORDER BY n AS SELECT 1 AS n", err: "TO a table"},
	{name: "a view filling a sharded table from an unsharded one", in: "CREATE MATERIALIZED VIEW ikd.v TO ikd.residents_daily AS SELECT * FROM ikd.targets", err: "not sharded"},
	{name: "a statement kind without a cluster form", in: "SYSTEM RELOAD DICTIONARIES", err: "no cluster form"},
	{name: "a sharded table on an engine that cannot replicate", in: "CREATE TABLE ikd.events (n UInt8) ENGINE = Memory", err: "MergeTree-family"},
}

func TestClusterRewriteTurnsOneServerDDLIntoReplicatedShardedDDL(t *testing.T) {
	c := planned(t)
	for _, tc := range rewriteCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Rewrite(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// shippedCluster is the cluster planned over the shipped migrations and the
// runner's bookkeeping.
func shippedCluster(t *testing.T) *warehouse.Cluster {
	t.Helper()
	migrations := []warehouse.Migration{}
	for _, s := range mustStatements(t, "") {
		migrations = append(migrations, warehouse.Migration{Name: "x.sql", Text: s + ";\n"})
	}
	c, err := warehouse.NewCluster("ikd", migrations)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClusterShardsEventsByResidentAndWhatItsViewsFill(t *testing.T) {
	got := shippedCluster(t).Sharded()
	if got["ikd.events"] != "cityHash64(resident)" {
		t.Errorf("ikd.events is sharded by %q, want cityHash64(resident)", got["ikd.events"])
	}
	if key, ok := got["ikd.residents_daily"]; !ok || key != "rand()" {
		t.Errorf("ikd.residents_daily: sharded %v by %q, want sharded with the events, by rand()", ok, key)
	}
	for _, small := range []string{"ikd.provinces", "ikd.cities", "ikd.targets", "ikd.alerts", "ikd.schema_migrations", "ikd.schema_lock"} {
		if _, ok := got[small]; ok {
			t.Errorf("%s is sharded; want it whole on every node", small)
		}
	}
	if _, err := warehouse.NewCluster("ikd-prod", nil); err == nil {
		t.Error("a cluster name ON CLUSTER cannot take unquoted was accepted")
	}
}

func mustStatements(t *testing.T, cluster string) []string {
	t.Helper()
	stmts, err := warehouse.AllStatements(schema.Migrations, cluster)
	if err != nil {
		t.Fatalf("cluster %q: %v", cluster, err)
	}
	return stmts
}

// formatQuery has the engine parse stmt (without running it) and returns
// it as the engine prints it.
func formatQuery(conn driver.Conn, stmt string) (string, error) {
	var out string
	err := conn.QueryRow(context.Background(), "SELECT formatQuery(?)", stmt).Scan(&out)
	return out, err
}

var mergeTreeEngine = regexp.MustCompile(`ENGINE = (\w*)MergeTree`)

func TestEveryMigrationStatementParsesOnOneServerAndOnACluster(t *testing.T) {
	conn := connect(t)
	// The check bites: a malformed statement is a syntax error (62).
	var ex *clickhouse.Exception
	if _, err := formatQuery(conn, "CREATE TABLE ikd.t ON CLUSTER c (n UInt8) ENGINE = ReplicatedMergeTree( ORDER BY n"); !errors.As(err, &ex) || ex.Code != 62 {
		t.Fatalf("a malformed statement got %v, want the engine's SYNTAX_ERROR (62)", err)
	}
	single, cluster := mustStatements(t, ""), mustStatements(t, "ikd_cluster")
	distributed := map[string]bool{}
	for _, stmt := range single {
		if _, err := formatQuery(conn, stmt); err != nil {
			t.Errorf("one server: %v", err)
		}
	}
	for _, stmt := range cluster {
		formatted, err := formatQuery(conn, stmt)
		if err != nil {
			t.Errorf("cluster: %v", err)
			continue
		}
		if !strings.HasPrefix(formatted, "INSERT") && !strings.Contains(formatted, " ON CLUSTER ikd_cluster") {
			t.Errorf("cluster statement does not run ON CLUSTER:\n%s", formatted)
		}
		for _, m := range mergeTreeEngine.FindAllStringSubmatch(formatted, -1) {
			if !strings.HasPrefix(m[1], "Replicated") {
				t.Errorf("cluster statement keeps the unreplicated engine %sMergeTree:\n%s", m[1], formatted)
			}
		}
		if strings.Contains(formatted, "non_replicated_deduplication_window") {
			t.Errorf("cluster statement keeps a one-server setting:\n%s", formatted)
		}
		if i := strings.Index(formatted, "ENGINE = Distributed('ikd_cluster', 'ikd', '"); i >= 0 {
			distributed[strings.SplitN(formatted[i+len("ENGINE = Distributed('ikd_cluster', 'ikd', '"):], "'", 2)[0]] = true
		}
	}
	want := map[string]bool{}
	for table := range shippedCluster(t).Sharded() {
		want[strings.TrimPrefix(table, "ikd.")+"_local"] = true
	}
	if !want["events_local"] || !maps.Equal(distributed, want) {
		t.Errorf("Distributed tables over %v, want one over each sharded table's local table, ikd.events' among them: %v", distributed, want)
	}
	t.Logf("parsed %d statements for one server and %d for the cluster", len(single), len(cluster))
	for _, tc := range rewriteCases {
		for _, stmt := range append([]string{tc.in}, tc.want...) {
			if _, err := formatQuery(conn, stmt); err != nil && tc.err == "" {
				t.Errorf("rewriter case %q: %v", tc.name, err)
			}
		}
	}
}
