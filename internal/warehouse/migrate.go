package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/region"
)

// Migrate applies the migrations of fsys (*.sql, in name order) that the
// warehouse has not applied yet, and loads the reference regions. Applied
// migrations are append-only: they are recorded with a SHA-256 of their
// text in ikd.schema_migrations, and one whose text changed since is refused
// before anything is applied (a change to a table comes as a new numbered
// migration). Programs starting at once take turns through a lock held in
// the warehouse itself (see lock.go), so that one applies and the others find
// it done.
func Migrate(ctx context.Context, conn driver.Conn, fsys fs.FS, ref *region.Reference, logger *slog.Logger) error {
	return MigrateCluster(ctx, conn, fsys, "", ref, logger)
}

// MigrateCluster is Migrate on the ClickHouse cluster named cluster (""
// for one server): the same migrations, each statement in its cluster form
// (see Cluster), and the bookkeeping replicated to every node.
func MigrateCluster(ctx context.Context, conn driver.Conn, fsys fs.FS, cluster string, ref *region.Reference, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	migrations, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	form, err := newForm(cluster, migrations)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	prepare, err := form.statements(bookkeeping...)
	if err != nil {
		return fmt.Errorf("migrate: prepare: %w", err)
	}
	for _, ddl := range prepare {
		if err := conn.Exec(ctx, ddl); err != nil && !alreadyExists(err) {
			return fmt.Errorf("migrate: prepare: %w", err)
		}
	}
	ctx = form.consistent(ctx)
	unlock, err := acquireLock(ctx, conn, logger)
	if err != nil {
		return err
	}
	defer unlock()
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return err
	}
	pending, err := Pending(migrations, applied)
	if err != nil {
		return err
	}
	// Every statement is put in its form before any runs, so that one the
	// cluster has no form for is refused with nothing applied.
	runs := make([][]string, len(pending))
	for i, m := range pending {
		if runs[i], err = form.statements(Statements(m.Text)...); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	for i, m := range pending {
		for j, stmt := range runs[i] {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate: %s statement %d: %w", m.Name, j+1, err)
			}
		}
		if then := afterMigration[m.Name]; then != nil {
			if err := then(ctx, conn, logger); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.Name, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO ikd.schema_migrations (name, sha256) VALUES (?, ?)", m.Name, m.SHA256); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		logger.Info("schema migration applied", "migration", m.Name, "cluster", cluster)
	}
	return loadReference(ctx, conn, ref, logger)
}

// bookkeeping are the runner's own tables, made before it takes its lock.
var bookkeeping = []string{
	"CREATE DATABASE IF NOT EXISTS ikd",
	`CREATE TABLE IF NOT EXISTS ikd.schema_migrations (name String, sha256 String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
	 ENGINE = ReplacingMergeTree(applied_at) ORDER BY name`,
	lockTable,
}

// AllStatements returns every statement the runner runs on a fresh
// warehouse, its bookkeeping first, in the form for cluster ("" for one
// server), so that a test can have the engine parse each.
func AllStatements(fsys fs.FS, cluster string) ([]string, error) {
	migrations, err := readMigrations(fsys)
	if err != nil {
		return nil, err
	}
	form, err := newForm(cluster, migrations)
	if err != nil {
		return nil, err
	}
	out, err := form.statements(bookkeeping...)
	if err != nil {
		return nil, err
	}
	for _, m := range migrations {
		stmts, err := form.statements(Statements(m.Text)...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// form is how statements run: as written on one server, rewritten on a
// cluster.
type form struct{ cluster *Cluster }

func newForm(cluster string, migrations []Migration) (form, error) {
	if cluster == "" {
		return form{}, nil
	}
	c, err := NewCluster(cluster, migrations)
	return form{c}, err
}

func (f form) statements(stmts ...string) ([]string, error) {
	if f.cluster == nil {
		return stmts, nil
	}
	var out []string
	for _, s := range stmts {
		rewritten, err := f.cluster.Rewrite(s)
		if err != nil {
			return nil, err
		}
		out = append(out, rewritten...)
	}
	return out, nil
}

// consistent makes the lock's and the record's inserts and reads
// linearizable on a cluster, where the node a program talks to may not yet
// have another node's insert: inserts wait for a majority of the replicas,
// and a read on a replica that lacks one of them fails (and is retried)
// instead of answering without it.
func (f form) consistent(ctx context.Context) context.Context {
	if f.cluster == nil {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_quorum":                 "auto",
		"insert_quorum_parallel":        0,
		"select_sequential_consistency": 1,
	}))
}

// afterMigration is work in Go that a migration needs before it counts as
// applied; it must be safe to run again, since a failure leaves the
// migration pending.
var afterMigration = map[string]func(context.Context, driver.Conn, *slog.Logger) error{
	"007_first_seen.sql":                 recountWith(recountResidents), // the ledger of the events already written
	"013_newest_times_in_the_ledger.sql": recountWith(recountNewest),    // their newest times, which ikd.latest_daily held
}

// Migration is one numbered file of the schema.
type Migration struct {
	Name   string // file name, e.g. 003_attainment.sql; the order is by name
	Text   string
	SHA256 string // hex digest of Text
}

func readMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: list: %w", err)
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		sum := sha256.Sum256(text)
		out = append(out, Migration{Name: name, Text: string(text), SHA256: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// Pending returns the migrations not yet applied, in order, given the
// digests of the applied ones by name. It refuses, naming it, a migration
// whose text changed after it was applied.
func Pending(migrations []Migration, applied map[string]string) ([]Migration, error) {
	var pending []Migration
	for _, m := range migrations {
		sum, done := applied[m.Name]
		switch {
		case !done:
			pending = append(pending, m)
		case sum != m.SHA256:
			return nil, fmt.Errorf("migrate: %s was changed after it was applied (applied sha256 %.12s, now %.12s): "+
				"applied migrations are append-only; restore it and put the change in a new numbered migration", m.Name, sum, m.SHA256)
		}
	}
	return pending, nil
}

// appliedMigrations returns the digest of each applied migration by name.
func appliedMigrations(ctx context.Context, conn driver.Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT name, argMax(sha256, applied_at) FROM ikd.schema_migrations GROUP BY name")
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied migrations: %w", err)
	}
	defer rows.Close()
	applied := map[string]string{}
	for rows.Next() {
		var name, sum string
		if err := rows.Scan(&name, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read applied migrations: %w", err)
		}
		applied[name] = sum
	}
	return applied, rows.Err()
}

// Statements splits a migration into its statements: each ends with a
// semicolon at the end of a line. Comment-only pieces are dropped.
func Statements(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		cur.WriteString(line)
		if !strings.HasSuffix(strings.TrimSpace(line), ";") {
			continue
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); hasCode(stmt) {
			out = append(out, stmt)
		}
		cur.Reset()
	}
	if stmt := strings.TrimSpace(cur.String()); hasCode(stmt) {
		out = append(out, stmt)
	}
	return out
}

func hasCode(stmt string) bool {
	for _, line := range strings.Split(stmt, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
			return true
		}
	}
	return false
}

// loadReference fills ikd.provinces and ikd.cities when they do not hold
// exactly the shipped reference data.
func loadReference(ctx context.Context, conn driver.Conn, ref *region.Reference, logger *slog.Logger) error {
	provinces, cities := ref.Provinces(), ref.Cities()
	var haveProvinces, haveCities uint64
	err := conn.QueryRow(ctx, `SELECT (SELECT count() FROM ikd.provinces FINAL), (SELECT count() FROM ikd.cities FINAL)`).
		Scan(&haveProvinces, &haveCities)
	if err != nil {
		return fmt.Errorf("migrate: count reference regions: %w", err)
	}
	if haveProvinces == uint64(len(provinces)) && haveCities == uint64(len(cities)) {
		return nil
	}
	pb, err := conn.PrepareBatch(ctx, "INSERT INTO ikd.provinces (code, name)")
	if err != nil {
		return fmt.Errorf("migrate: load provinces: %w", err)
	}
	for _, p := range provinces {
		if err := pb.Append(p.Code, p.Name); err != nil {
			return fmt.Errorf("migrate: load provinces: %w", err)
		}
	}
	if err := pb.Send(); err != nil {
		return fmt.Errorf("migrate: load provinces: %w", err)
	}
	cb, err := conn.PrepareBatch(ctx, "INSERT INTO ikd.cities (code, province_code, name)")
	if err != nil {
		return fmt.Errorf("migrate: load cities: %w", err)
	}
	for _, c := range cities {
		if err := cb.Append(c.Code, c.ProvinceCode, c.Name); err != nil {
			return fmt.Errorf("migrate: load cities: %w", err)
		}
	}
	if err := cb.Send(); err != nil {
		return fmt.Errorf("migrate: load cities: %w", err)
	}
	if logger != nil {
		logger.Info("reference regions loaded", "provinces", len(provinces), "cities", len(cities))
	}
	return nil
}
