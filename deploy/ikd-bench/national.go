package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// nationalLoad inserts rows synthetic events straight into ikd.events with
// INSERT ... SELECT FROM numbers(), in chunks, through the materialized view
// like any insert: residents r = 0..rows/2-1 enrol (one enrolment each) and
// the same residents activate (one activation each), spread over every city
// in ikd.cities and over the days from 2024-01-01 to yesterday.
func nationalLoad(ctx context.Context, conn driver.Conn, rows, chunk int64) (time.Duration, error) {
	start := time.Now()
	for off := int64(0); off < rows; off += chunk {
		n := min(chunk, rows-off)
		sql := fmt.Sprintf(`INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
WITH
    (SELECT groupArray((code, province_code)) FROM (SELECT code, province_code FROM ikd.cities FINAL ORDER BY code)) AS cs,
    length(cs) AS nc,
    dateDiff('second', toDateTime('2024-01-01 00:00:00', 'UTC'), now() - INTERVAL 1 DAY) AS span
SELECT
    concat('nat-', toString(number)) AS event_id,
    if(number %% 2 = 0, 'enrolment', 'activation') AS type,
    lower(hex(MD5(toString(intDiv(number, 2))))) AS resident,
    cs[1 + intDiv(number, 2) %% nc].2 AS province_code,
    cs[1 + intDiv(number, 2) %% nc].1 AS city_code,
    concat(cs[1 + intDiv(number, 2) %% nc].1, '.01') AS district_code,
    concat(replaceOne(cs[1 + intDiv(number, 2) %% nc].1, '.', ''), '-OFF-01') AS office_id,
    'counter' AS channel,
    toDateTime64(toDateTime('2024-01-01 00:00:00', 'UTC') + (cityHash64(intDiv(number, 2)) %% span) + (number %% 2) * 3600, 3, 'UTC') AS occurred_at,
    0 AS stream_seq
FROM numbers(%d, %d)`, off, n)
		if err := conn.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("national load at %d: %w", off, err)
		}
		log.Printf("national: %d/%d rows in %s", off+n, rows, time.Since(start).Round(time.Second))
	}
	return time.Since(start), nil
}

// queryLatency runs sql runs times through clickhouse-go over the HTTP front,
// reading every row, and returns each run's wall time.
func queryLatency(ctx context.Context, conn driver.Conn, sql string, runs int) ([]time.Duration, int, error) {
	var out []time.Duration
	var nrows int
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", sql, err)
		}
		nrows = 0
		for rows.Next() {
			nrows++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", sql, err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nrows, nil
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
