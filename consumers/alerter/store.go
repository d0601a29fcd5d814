package alerter

import (
	"context"
	"fmt"
	"time"
)

// record appends the transitions to ikd.alerts.
func (a *Alerter) record(ctx context.Context, alerts []Alert) error {
	batch, err := a.conn.PrepareBatch(ctx, `INSERT INTO ikd.alerts (alert_id, rule, severity, state, year, region_code,
		province_code, city_code, region_name, attainment_pct, expected_pct, target, activated, message, at)`)
	if err != nil {
		return fmt.Errorf("record alerts: %w", err)
	}
	for _, al := range alerts {
		if err := batch.Append(al.AlertID, string(al.Rule), string(al.Severity), string(al.State), uint16(al.Year), al.RegionCode,
			al.ProvinceCode, al.CityCode, al.RegionName, al.AttainmentPct, al.ExpectedPct, al.Target, al.Activated, al.Message, al.At); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("record alerts: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record %d alerts: %w", len(alerts), err)
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
