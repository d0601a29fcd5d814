package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// nationalYear is the year the national data set fills.
const nationalYear = 2025

// nationalLoad fills nationalYear as the registry's target describes the
// nation: activations of distinct residents (50 million at scale 1) and
// enrolments of a tenth as many new residents, spread over every city in
// ikd.cities and every day of the year, inserted with INSERT ... SELECT FROM
// numbers() in chunks through the materialized views like any insert; then a
// target of 25 % of recorded residents for every city, province and the
// nation, with recorded baselines that add up to 200 million (at scale 1).
func nationalLoad(ctx context.Context, conn driver.Conn, activations, recorded, chunk int64) (time.Duration, error) {
	start := time.Now()
	// A chunk takes seconds on a quiet machine and can take over the front's
	// default limit for a statement on a busy one.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 0}))
	for _, part := range []struct {
		typ    string
		events int64
	}{{"activation", activations}, {"enrolment", activations / 10}} {
		for off := int64(0); off < part.events; off += chunk {
			n := min(chunk, part.events-off)
			if err := conn.Exec(ctx, nationalEvents(part.typ, off, n)); err != nil {
				return 0, fmt.Errorf("national load of %ss at %d: %w", part.typ, off, err)
			}
			log.Printf("national: %d/%d %ss in %s", off+n, part.events, part.typ, time.Since(start).Round(time.Second))
		}
	}
	for _, sql := range nationalTargets(recorded) {
		if err := conn.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("national targets: %w", err)
		}
	}
	return time.Since(start), nil
}

// nationalEvents is the insert of n events of typ, residents off..off+n-1 of
// that type, each in a city and at a second of nationalYear given by its
// number's hash.
func nationalEvents(typ string, off, n int64) string {
	return fmt.Sprintf(`INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
WITH
    (SELECT groupArray((code, province_code)) FROM (SELECT code, province_code FROM ikd.cities FINAL ORDER BY code)) AS cs,
    length(cs) AS nc,
    cs[1 + cityHash64('city', number) %% nc] AS c,
    toDateTime('%[2]d-01-01 00:00:00', 'Asia/Jakarta') AS year_start
SELECT
    concat('nat-%[1]s-', toString(number)) AS event_id,
    '%[1]s' AS type,
    lower(hex(MD5(concat('%[1]s', toString(number))))) AS resident,
    c.2 AS province_code,
    c.1 AS city_code,
    concat(c.1, '.01') AS district_code,
    concat(replaceOne(c.1, '.', ''), '-OFF-01') AS office_id,
    'counter' AS channel,
    toDateTime64(year_start + cityHash64('at', number) %% (365 * 86400), 3, 'UTC') AS occurred_at,
    0 AS stream_seq
FROM numbers(%[3]d, %[4]d)`, typ, nationalYear, off, n)
}

// nationalTargets sets 25 % of recorded residents as the target of every
// city, each with an equal share of recorded, of every province, with its
// cities' sum, and of the nation, with recorded.
func nationalTargets(recorded int64) []string {
	const insert = "INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline) "
	share := fmt.Sprintf("intDiv(%d, (SELECT count() FROM ikd.cities FINAL))", recorded)
	return []string{
		insert + fmt.Sprintf("SELECT %d, code, 'percent_of_recorded', 25, %s FROM ikd.cities FINAL", nationalYear, share),
		insert + fmt.Sprintf("SELECT %d, province_code, 'percent_of_recorded', 25, count() * %s FROM ikd.cities FINAL GROUP BY province_code", nationalYear, share),
		insert + fmt.Sprintf("SELECT %d, '', 'percent_of_recorded', 25, %d", nationalYear, recorded),
	}
}

type partSize struct {
	table string
	rows  uint64
	bytes uint64
}

func diskSizes(ctx context.Context, conn driver.Conn) ([]partSize, error) {
	rows, err := conn.Query(ctx, "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = 'ikd' AND active GROUP BY table ORDER BY table")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []partSize
	for rows.Next() {
		var p partSize
		if err := rows.Scan(&p.table, &p.rows, &p.bytes); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// keptTables are the ikd tables that hold no counted event: reference data,
// targets, alerts and the migrations' own.
var keptTables = []string{"cities", "provinces", "districts", "targets", "alerts", "schema_migrations", "schema_lock"}

// truncateCounts empties ikd.events and every table counted from it (the
// engine ceiling's events are not the pipeline's), whatever the schema
// counts with.
func truncateCounts(ctx context.Context, conn driver.Conn) error {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = 'ikd' AND engine LIKE '%MergeTree' AND NOT has(?, name)", keptTables)
	if err != nil {
		return fmt.Errorf("list the tables to empty: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if err := conn.Exec(ctx, "TRUNCATE TABLE ikd."+n); err != nil {
			return fmt.Errorf("empty ikd.%s: %w", n, err)
		}
	}
	log.Printf("step 2: emptied ikd.%s", strings.Join(names, ", ikd."))
	return nil
}

// settle waits until the engine merges no ikd part, so that reads are timed
// on the warehouse at rest rather than beside the load's merges; it returns
// the active parts per counting table then.
func settle(ctx context.Context, conn driver.Conn, limit time.Duration) (string, error) {
	end := time.Now().Add(limit)
	for {
		var merging uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = 'ikd'").Scan(&merging); err != nil {
			return "", fmt.Errorf("merges in progress: %w", err)
		}
		if merging == 0 || time.Now().After(end) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
	var parts string
	err := conn.QueryRow(ctx, `SELECT arrayStringConcat(groupArray(concat(table, ' ', toString(n))), ', ') FROM
		(SELECT table, count() AS n FROM system.parts WHERE database = 'ikd' AND active AND table = 'first_seen' GROUP BY table ORDER BY table)`).Scan(&parts)
	return parts, err
}
