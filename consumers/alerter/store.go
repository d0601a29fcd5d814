package alerter

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// record appends one transition to ikd.alerts under its Nats-Msg-Id as the
// insert's deduplication token: the same transition recorded by another
// alerter, or again after a crash, is dropped by the warehouse.
func (a *Alerter) record(ctx context.Context, al Alert) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": "alert-" + al.MsgID()}))
	batch, err := a.conn.PrepareBatch(ctx, `INSERT INTO ikd.alerts (alert_id, rule, severity, state, year, region_code,
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

// load reads the latest transition of every (rule, region, year).
func (a *Alerter) load(ctx context.Context) error {
	rows, err := a.conn.Query(ctx, `SELECT rule, region_code, year,
		argMax(alert_id, at), argMax(severity, at), argMax(state, at), argMax(province_code, at), argMax(city_code, at),
		argMax(region_name, at), argMax(attainment_pct, at), argMax(expected_pct, at), argMax(target, at),
		argMax(activated, at), argMax(message, at), max(at)
		FROM ikd.alerts GROUP BY rule, region_code, year`)
	if err != nil {
		return fmt.Errorf("load alert state: %w", err)
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
			return fmt.Errorf("load alert state: %w", err)
		}
		al.Rule, al.Severity, al.State, al.Year, al.At = Rule(rule), Severity(severity), State(st), int(year), at.UTC()
		state[al.Key()] = al
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load alert state: %w", err)
	}
	a.mu.Lock()
	a.state = state
	a.mu.Unlock()
	return nil
}
