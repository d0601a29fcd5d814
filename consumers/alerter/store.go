package alerter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// warehouseStore is the warehouse as the alerter's AttainmentReader (the
// attainment views) and AlertStore (ikd.alerts).
type warehouseStore struct {
	conn driver.Conn
}

// Record appends one transition to ikd.alerts under its Nats-Msg-Id as the
// insert's deduplication token: the same transition recorded by another
// alerter, or again after a crash, is dropped by the warehouse.
func (w warehouseStore) Record(ctx context.Context, al Alert) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": "alert-" + al.MsgID()}))
	batch, err := w.conn.PrepareBatch(ctx, `INSERT INTO ikd.alerts (alert_id, rule, severity, state, year, region_code,
		province_code, city_code, region_name, attainment_pct, expected_pct, target, activated, message, at)`)
	if err != nil {
		return fmt.Errorf("record alert %s: %w", al.MsgID(), err)
	}
	if err := batch.Append(al.AlertID, string(al.Rule), string(al.Severity), string(al.State), uint16(al.Year), al.RegionCode,
		al.ProvinceCode, al.CityCode, al.RegionName, al.AttainmentPct, al.ExpectedPct, al.Target, al.Activated, al.Message, al.At); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("record alert %s: %w", al.MsgID(), err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record alert %s: %w", al.MsgID(), err)
	}
	return nil
}

// writesPriority runs the alerter's reads at the writes' priority
// (os_thread_priority 0), where the embedded warehouse lets other reads, an
// analyst's loop among them, yield the CPUs (README, "Readers yield the CPUs
// to inserts"): an evaluation after every batch reads the alerts and two
// views, and what it decides reaches people. Each query gets a map of its
// own, since the client adds to a query's settings.
func writesPriority() clickhouse.QueryOption {
	return clickhouse.WithSettings(clickhouse.Settings{"os_thread_priority": 0})
}

// Latest reads the latest transition of every (rule, region, year).
func (w warehouseStore) Latest(ctx context.Context) (map[string]Alert, error) {
	rows, err := w.conn.Query(clickhouse.Context(ctx, writesPriority()), `SELECT rule, region_code, year,
		argMax(alert_id, at), argMax(severity, at), argMax(state, at), argMax(province_code, at), argMax(city_code, at),
		argMax(region_name, at), argMax(attainment_pct, at), argMax(expected_pct, at), argMax(target, at),
		argMax(activated, at), argMax(message, at), max(at)
		FROM ikd.alerts GROUP BY rule, region_code, year`)
	if err != nil {
		return nil, fmt.Errorf("load alert state: %w", err)
	}
	defer rows.Close()
	state := map[string]Alert{}
	for rows.Next() {
		var al Alert
		var rule, severity, st string
		var year uint16
		var at time.Time
		if err := rows.Scan(&rule, &al.RegionCode, &year, &al.AlertID, &severity, &st, &al.ProvinceCode, &al.CityCode,
			&al.RegionName, &al.AttainmentPct, &al.ExpectedPct, &al.Target, &al.Activated, &al.Message, &at); err != nil {
			return nil, fmt.Errorf("load alert state: %w", err)
		}
		al.Rule, al.Severity, al.State, al.Year, al.At = Rule(rule), Severity(severity), State(st), int(year), at.UTC()
		state[al.Key()] = al
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load alert state: %w", err)
	}
	return state, nil
}

// Attainment reads the current year's rows with a target and some of the year
// gone; the current year is that of now's day in WIB. Every value is a
// parameter the warehouse binds, the regions as one array each, so that the
// statement's text stays the same from one evaluation to the next.
func (w warehouseStore) Attainment(ctx context.Context, now time.Time, cities []string) ([]Row, error) {
	// As of today, the running views are the as-of figures, at a third of
	// the as-of views' cost.
	return w.attainment(ctx, now, cities, today(now, time.Now()))
}

// attainment is Attainment from the running views or the as-of views.
func (w warehouseStore) attainment(ctx context.Context, now time.Time, cities []string, running bool) ([]Row, error) {
	params := clickhouse.Parameters{"year": strconv.Itoa(now.In(events.WIB).Year())}
	cityView, provinceView := "ikd.attainment_city", "ikd.attainment_province"
	if !running {
		cityView, provinceView = "ikd.attainment_city_as_of(as_of = {as_of:Date})", "ikd.attainment_province_as_of(as_of = {as_of:Date})"
		params["as_of"] = now.In(events.WIB).Format(time.DateOnly)
	}
	const where = " WHERE year = {year:UInt16} AND target > 0 AND expected_pct > 0"
	cityQuery := `SELECT year, province_code, city_code, city_name, activated, target, attainment_pct, expected_pct, last_activation_at
		 FROM ` + cityView + where
	provinceQuery := `SELECT year, province_code, '', province_name, activated, target, attainment_pct, expected_pct, last_activation_at
		 FROM ` + provinceView + where
	if cities != nil {
		cs, ps := regionsOf(cities)
		if len(cs) == 0 {
			return nil, nil
		}
		// Codes are digits and dots (regionsOf keeps no other).
		params["cities"], params["provinces"] = "['"+strings.Join(cs, "','")+"']", "['"+strings.Join(ps, "','")+"']"
		cityQuery += " AND has({cities:Array(String)}, city_code)"
		provinceQuery += " AND has({provinces:Array(String)}, province_code)"
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(params), writesPriority())
	var out []Row
	for _, sql := range []string{cityQuery, provinceQuery} {
		rows, err := w.conn.Query(ctx, sql)
		if err != nil {
			return nil, fmt.Errorf("read attainment: %w", err)
		}
		for rows.Next() {
			var r Row
			var year uint16
			var last *time.Time // NULL: no activation in the year
			if err := rows.Scan(&year, &r.ProvinceCode, &r.CityCode, &r.Name, &r.Activated, &r.Target, &r.AttainmentPct, &r.ExpectedPct, &last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read attainment: %w", err)
			}
			r.Year = int(year)
			if last != nil {
				r.LastActivationAt = *last
			}
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read attainment: %w", err)
		}
	}
	return out, nil
}

// today says whether now is the wall clock's day in WIB. Around midnight the
// alerter's clock and the warehouse's may name two days for one evaluation;
// expected_pct then differs by a day's share of the year until the next one.
func today(now, wall time.Time) bool {
	return now.In(events.WIB).Format(time.DateOnly) == wall.In(events.WIB).Format(time.DateOnly)
}
