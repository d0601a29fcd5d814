package papan_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/consumers/papan"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// fixture is a warehouse with a known year and the year before it, written
// through the pipeline's own table (ikd.events, counted by the materialized
// view), targets and alerts, and the board serving it.
type fixture struct {
	db    driver.Conn
	url   string
	today time.Time // WIB
	year  int
	// lastDay is the last day of the year before, the date the date picker
	// goes to.
	lastDay time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, _ := testenv.MigratedWarehouse(t)
	now := time.Now().In(papan.WIB)
	f := &fixture{db: db, today: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, papan.WIB), year: now.Year()}
	f.lastDay = time.Date(f.year-1, 12, 31, 0, 0, 0, 0, papan.WIB)

	// This year, on today's first moments and now (always this year, never
	// ahead of the clock); last year, across its months.
	var recs []warehouse.Record
	add := func(typ events.Type, city string, residents int, at func(i int) time.Time) {
		for i := range residents {
			recs = append(recs, warehouse.Record{Seq: uint64(len(recs) + 1), Event: events.Event{
				V: 1, EventID: fmt.Sprintf("fx-%d", len(recs)), Type: typ,
				Resident: fmt.Sprintf("%s-%s-%d-%d", typ, city, at(i).Year(), i), ProvinceCode: city[:2], CityCode: city,
				DistrictCode: city + ".01", OfficeID: "fixture", Channel: events.ChannelCounter, OccurredAt: at(i).UTC(),
			}})
		}
	}
	today := func(i int) time.Time { return f.today.Add(time.Duration(i) * time.Millisecond) }
	lastYear := func(i int) time.Time { return time.Date(f.year-1, time.Month(3+i%9), 1+i%27, 10, 0, 0, 0, papan.WIB) }
	add(events.TypeActivation, "17.71", 30, today)
	add(events.TypeActivation, "17.71", 3, today) // the same residents again: counted once
	add(events.TypeActivation, "17.01", 5, today)
	add(events.TypeActivation, "18.71", 12, today)
	add(events.TypeActivation, "31.71", 7, func(int) time.Time { return now }) // the newest: the pipeline looks healthy
	add(events.TypeEnrolment, "17.71", 4, today)
	add(events.TypeActivation, "17.71", 40, lastYear)
	add(events.TypeActivation, "18.71", 25, lastYear)
	if err := warehouse.NewEventWriter(db).Write(ctx, recs); err != nil {
		t.Fatal(err)
	}

	targets := []struct {
		year     int
		region   string
		kind     string
		value    float64
		baseline uint64
	}{
		{f.year, "", "absolute", 5000, 0},
		{f.year, "17", "percent_of_recorded", 25, 1000},
		{f.year, "17.71", "absolute", 100, 0},
		{f.year, "18.71", "absolute", 40, 0},
		{f.year - 1, "17.71", "absolute", 50, 0},
	}
	for _, tg := range targets {
		if err := db.Exec(ctx, `INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline) VALUES (?, ?, ?, ?, ?)`,
			uint16(tg.year), tg.region, tg.kind, tg.value, tg.baseline); err != nil {
			t.Fatal(err)
		}
	}

	alerts := []struct {
		id, rule, severity, state, region, province, city string
		year                                              int
		at                                                time.Time
	}{
		{"a1", "behind_pace", "warning", "firing", "17.71", "17", "17.71", f.year - 1, time.Date(f.year-1, 5, 2, 8, 0, 0, 0, papan.WIB)},
		{"a1", "behind_pace", "warning", "resolved", "17.71", "17", "17.71", f.year - 1, time.Date(f.year-1, 9, 3, 8, 0, 0, 0, papan.WIB)},
		{"a2", "stale", "warning", "firing", "17.71", "17", "17.71", f.year - 1, time.Date(f.year-1, 11, 20, 8, 0, 0, 0, papan.WIB)},
		{"a3", "behind_pace", "critical", "firing", "17", "17", "", f.year, f.today.Add(time.Second)},
		{"a4", "projection", "warning", "firing", "17.71", "17", "17.71", f.year, f.today.Add(2 * time.Second)},
	}
	for _, a := range alerts {
		if err := db.Exec(ctx, `INSERT INTO ikd.alerts (alert_id, rule, severity, state, year, region_code, province_code, city_code,
			region_name, attainment_pct, expected_pct, target, activated, message, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, ?)`,
			a.id, a.rule, a.severity, a.state, uint16(a.year), a.region, a.province, a.city, "fixture", a.region+": "+a.rule+" "+a.state, a.at.UTC()); err != nil {
			t.Fatal(err)
		}
	}

	srv := httptest.NewServer(papan.New(papan.DefaultConfig(), db, testenv.Quiet).Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// viewRow is a region's row of an attainment view.
type viewRow struct {
	Activated, Target       uint64
	AttainmentPct, Expected float64
	Behind                  bool
}

// view reads the rows of an attainment view as of day for day's year, by
// region code: what the page must show.
func (f *fixture) view(t *testing.T, level string, day time.Time, where string, args ...any) map[string]viewRow {
	t.Helper()
	codeCol := "province_code"
	if level == "city" {
		codeCol = "city_code"
	}
	q := fmt.Sprintf(`SELECT %s, activated, target, attainment_pct, expected_pct, behind_pace
		FROM ikd.attainment_%s_as_of(as_of = {day:Date}) WHERE year = {year:UInt16} %s`, codeCol, level, where)
	ctx := papanParams(day)
	rows, err := f.db.Query(ctx, q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]viewRow{}
	for rows.Next() {
		var code string
		var r viewRow
		if err := rows.Scan(&code, &r.Activated, &r.Target, &r.AttainmentPct, &r.Expected, &r.Behind); err != nil {
			t.Fatal(err)
		}
		out[code] = r
	}
	return out
}
