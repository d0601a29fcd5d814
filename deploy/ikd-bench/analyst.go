package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// viewQuery is one query an analyst runs.
type viewQuery struct {
	name, sql string
	// asOf: the view counts up to nationalAsOf, not the whole year.
	asOf bool
}

// nationalAsOf is the day the as-of views are read at.
var nationalAsOf = fmt.Sprintf("%d-06-30", nationalYear)

// referenceQuery reads a small table through the same front: the views'
// p99 is compared with its p99 in the same run, as the machine's noise moves
// both alike.
const referenceQuery = "SELECT * FROM ikd.cities FINAL"

// attainmentViews are the views (and their as-of forms) the analyst queries
// are timed on, where the schema has them.
var attainmentViews = []string{"attainment_city", "attainment_province", "attainment_national"}

// nationalQueries are the analyst queries over nationalYear of every
// attainment view the schema has, plain and as of nationalAsOf. Without a
// national view, the national row is the sum of the provinces, as the page
// computes it.
func nationalQueries(ctx context.Context, conn driver.Conn) ([]viewQuery, error) {
	have := map[string]bool{}
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = 'ikd' AND engine = 'View'")
	if err != nil {
		return nil, fmt.Errorf("list views: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list views: %w", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list views: %w", err)
	}
	var out []viewQuery
	for _, v := range attainmentViews {
		if have[v] {
			out = append(out, viewQuery{
				name: fmt.Sprintf("%s WHERE year=%d", v, nationalYear),
				sql:  fmt.Sprintf("SELECT * FROM ikd.%s WHERE year = %d", v, nationalYear)})
		}
		if have[v+"_as_of"] {
			out = append(out, viewQuery{asOf: true,
				name: fmt.Sprintf("%s_as_of('%s') WHERE year=%d", v, nationalAsOf, nationalYear),
				sql:  fmt.Sprintf("SELECT * FROM ikd.%s_as_of(as_of = '%s') WHERE year = %d", v, nationalAsOf, nationalYear)})
		}
	}
	if !have["attainment_national"] && have["attainment_province"] {
		out = append(out, viewQuery{
			name: fmt.Sprintf("national row: sum of attainment_province WHERE year=%d", nationalYear),
			sql: fmt.Sprintf("SELECT year, sum(activated) AS activated, sum(enrolled) AS enrolled FROM ikd.attainment_province WHERE year = %d GROUP BY year",
				nationalYear)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no attainment view in ikd")
	}
	return out, nil
}

// timing is what runs of one query measured.
type timing struct {
	lat  []time.Duration
	rows int
	err  error // the query's first failure; it is not run again after it
}

// interleavedLatency runs each query runs times after one warm-up round,
// the queries taking turns in every round, so that what else the machine
// does in the meantime falls on all of them alike.
func interleavedLatency(ctx context.Context, conn driver.Conn, queries []viewQuery, runs int) []timing {
	out := make([]timing, len(queries))
	for round := 0; round <= runs; round++ {
		for i, q := range queries {
			if out[i].err != nil {
				continue
			}
			t0 := time.Now()
			n, err := readAll(ctx, conn, q.sql)
			if err != nil {
				out[i].err = fmt.Errorf("%s: %w", q.sql, err)
				log.Printf("step 6: %v", out[i].err)
				continue
			}
			if round > 0 {
				out[i].lat = append(out[i].lat, time.Since(t0))
			}
			out[i].rows = n
		}
	}
	return out
}

// readAll runs sql and reads every row, as an analyst's client does.
func readAll(ctx context.Context, conn driver.Conn, sql string) (int, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	err = rows.Err()
	rows.Close()
	return n, err
}

// analystRows are the rows of the timed views: p50, and p99 against the
// goal, itself and as a ratio of the reference read's p99.
func analystRows(queries []viewQuery, ts []timing, ref timing) []Row {
	refP99 := percentile(ref.lat, 0.99)
	var rows []Row
	for i, q := range queries {
		t := ts[i]
		if t.err != nil || len(t.lat) == 0 {
			rows = append(rows, Row{Step: "6 analyst p99: " + q.name, Unit: "ms", Goal: "< 100 ms, <= 5 x 514-row read", Met: "NO",
				Note: fmt.Sprintf("failed: %v", t.err)})
			continue
		}
		p99 := percentile(t.lat, 0.99)
		ratio := float64(p99) / float64(max(refP99, time.Microsecond))
		rows = append(rows,
			Row{Step: "6 analyst p50: " + q.name, Figure: ms(percentile(t.lat, 0.5)), Unit: "ms", Goal: "-", Met: "-",
				Note: fmt.Sprintf("%d runs after one warm-up, %d rows each, via clickhouse-go HTTP, taking turns with the other queries", len(t.lat), t.rows)},
			Row{Step: "6 analyst p99: " + q.name, Figure: ms(p99), Unit: "ms", Ceiling: ptr(ms(refP99)), Ratio: ptr(ratio),
				Goal: "< 100 ms, <= 5 x 514-row read", Met: yesNo(p99 < 100*time.Millisecond && ratio <= 5)})
		log.Printf("step 6: %s p50 %s p99 %s (%.1f x the reference read)", q.name, percentile(t.lat, 0.5), p99, ratio)
	}
	return rows
}

// analyst runs queries in turn, back to back, until stopped, as an
// analyst's dashboard refreshing the national views would.
type analyst struct {
	cancel context.CancelFunc
	done   chan struct{}
	runs   int
	total  time.Duration
	err    error
}

func startAnalyst(ctx context.Context, conn driver.Conn, queries ...string) *analyst {
	ctx, cancel := context.WithCancel(ctx)
	a := &analyst{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			if _, err := readAll(ctx, conn, queries[i%len(queries)]); err != nil {
				if ctx.Err() == nil {
					a.err = err
				}
				return
			}
			a.runs++
			a.total += time.Since(start)
		}
	}()
	return a
}

// stop ends the loop and reports the queries run and their mean duration.
func (a *analyst) stop() (int, time.Duration, error) {
	a.cancel()
	<-a.done
	if a.runs == 0 {
		return 0, 0, a.err
	}
	return a.runs, a.total / time.Duration(a.runs), a.err
}
