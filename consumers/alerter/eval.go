package alerter

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
)

var cityCode = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`)

// Row is one region's attainment as the views report it.
type Row struct {
	Year             int
	ProvinceCode     string
	CityCode         string // "" for a province
	Name             string
	Activated        uint64
	Target           uint64
	AttainmentPct    float64
	ExpectedPct      float64
	LastActivationAt time.Time
}

func (r Row) region() string {
	if r.CityCode != "" {
		return r.CityCode
	}
	return r.ProvinceCode
}

// Evaluate applies the rules to the named cities and their provinces, or to
// every region when cities is nil, as of a.Now(), resolves the alerts of the
// years (WIB) gone by, and records, publishes and posts every transition.
func (a *Alerter) Evaluate(ctx context.Context, cities []string) error {
	a.evalMu.Lock()
	defer a.evalMu.Unlock()
	now := a.Now()
	rows, err := a.query(ctx, now, cities)
	if err != nil {
		return err
	}
	a.Stats.Evaluations.Add(1)
	changes := a.yearEnded(now)
	for _, r := range rows {
		changes = append(changes, a.transitions(r, now)...)
	}
	return a.apply(ctx, changes)
}

// apply records the transitions, then takes them into the state and
// announces them.
func (a *Alerter) apply(ctx context.Context, changes []Alert) error {
	if len(changes) == 0 {
		return nil
	}
	if err := a.record(ctx, changes); err != nil {
		return err // state unchanged: the next evaluation tries again
	}
	a.mu.Lock()
	for _, al := range changes {
		a.state[al.Key()] = al
	}
	a.mu.Unlock()
	for _, al := range changes {
		if al.State == Firing {
			a.Stats.Fired.Add(1)
		} else {
			a.Stats.Resolved.Add(1)
		}
		a.logger.Info("alert", "rule", al.Rule, "state", al.State, "severity", al.Severity, "region", al.RegionCode, "year", al.Year, "message", al.Message)
		a.publish(ctx, al)
	}
	return nil
}

// yearEnded resolves the alerts still firing for a year before now's year in
// WIB (as the warehouse counts years): only the current year is evaluated, so
// nothing else would ever resolve them.
func (a *Alerter) yearEnded(now time.Time) []Alert {
	year := now.In(events.WIB).Year()
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []Alert
	for _, cur := range a.state {
		if cur.State != Firing || cur.Year >= year {
			continue
		}
		al := cur
		al.State, al.At = Resolved, stamp(now, cur, true)
		al.Message = fmt.Sprintf("%s: year %d ended with the alert firing", cur.RegionName, cur.Year)
		out = append(out, al)
	}
	// Map order is random; a stable order keeps what subscribers see repeatable.
	slices.SortFunc(out, func(x, y Alert) int { return strings.Compare(x.Key(), y.Key()) })
	return out
}

// stamp is the time of a new transition of cur: now, or just after cur's own
// when known, so that the transitions of one alert are ordered by at even
// under a frozen clock.
func stamp(now time.Time, cur Alert, known bool) time.Time {
	at := now.UTC().Truncate(time.Millisecond)
	if known && !at.After(cur.At) {
		return cur.At.Add(time.Millisecond)
	}
	return at
}

// query reads the current year's rows with a target and some of the year gone;
// the current year is that of as_of, now's day in WIB.
func (a *Alerter) query(ctx context.Context, now time.Time, cities []string) ([]Row, error) {
	day := now.In(events.WIB).Format("2006-01-02")
	cityFilter, provinceFilter := "", ""
	if cities != nil {
		var cs, ps []string
		for _, c := range cities {
			if !cityCode.MatchString(c) {
				continue
			}
			if q := "'" + c + "'"; !slices.Contains(cs, q) {
				cs = append(cs, q)
			}
			if q := "'" + provinceOf(c) + "'"; !slices.Contains(ps, q) {
				ps = append(ps, q)
			}
		}
		if len(cs) == 0 {
			return nil, nil
		}
		cityFilter = " AND city_code IN (" + strings.Join(cs, ",") + ")"
		provinceFilter = " AND province_code IN (" + strings.Join(ps, ",") + ")"
	}
	const where = " WHERE year = toYear(as_of) AND target > 0 AND expected_pct > 0"
	queries := []string{
		`SELECT year, province_code, city_code, city_name, activated, target, attainment_pct, expected_pct, last_activation_at
		 FROM ikd.attainment_city_as_of(as_of = '` + day + `')` + where + cityFilter,
		`SELECT year, province_code, '', province_name, activated, target, attainment_pct, expected_pct, last_activation_at
		 FROM ikd.attainment_province_as_of(as_of = '` + day + `')` + where + provinceFilter,
	}
	var out []Row
	for _, q := range queries {
		rows, err := a.conn.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read attainment: %w", err)
		}
		for rows.Next() {
			var r Row
			var year uint16
			if err := rows.Scan(&year, &r.ProvinceCode, &r.CityCode, &r.Name, &r.Activated, &r.Target, &r.AttainmentPct, &r.ExpectedPct, &r.LastActivationAt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read attainment: %w", err)
			}
			r.Year = int(year)
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

// verdict is what a rule says about a region now.
type verdict struct {
	enter, leave bool
	severity     Severity
	message      string
}

func (a *Alerter) verdicts(r Row, now time.Time) map[Rule]verdict {
	c := a.cfg
	out := map[Rule]verdict{}
	if r.Target == 0 || r.ExpectedPct <= 0 {
		return out
	}
	edge := r.ExpectedPct - c.MarginPct
	sev := Warning
	if r.AttainmentPct < r.ExpectedPct*c.CriticalFactor {
		sev = Critical
	}
	out[BehindPace] = verdict{
		enter: r.AttainmentPct < edge, leave: r.AttainmentPct >= edge+c.HysteresisPct, severity: sev,
		message: fmt.Sprintf("%s: %.2f%% of the %d target reached with %.2f%% of the year gone (%d activated)",
			r.Name, r.AttainmentPct, r.Target, r.ExpectedPct, r.Activated),
	}
	projected := 100 * r.AttainmentPct / r.ExpectedPct
	out[Projection] = verdict{
		enter: projected < 100, leave: projected >= 100+c.HysteresisPct, severity: Warning,
		message: fmt.Sprintf("%s: at this pace the year ends at %.0f of the %d target (%.1f%%)",
			r.Name, float64(r.Activated)*100/r.ExpectedPct, r.Target, projected),
	}
	if c.StaleDays > 0 {
		since := time.Date(r.Year, 1, 1, 0, 0, 0, 0, events.WIB)
		if r.LastActivationAt.After(since) {
			since = r.LastActivationAt
		}
		idle := now.Sub(since)
		limit := time.Duration(c.StaleDays) * 24 * time.Hour
		msg := fmt.Sprintf("%s: no activation for %d days", r.Name, int(idle.Hours()/24))
		if r.LastActivationAt.Before(time.Date(r.Year, 1, 1, 0, 0, 0, 0, events.WIB)) {
			msg = fmt.Sprintf("%s: no activation yet in %d (%d days)", r.Name, r.Year, int(idle.Hours()/24))
		}
		out[Stale] = verdict{enter: idle >= limit, leave: idle < limit, severity: Warning, message: msg}
	}
	return out
}

// transitions compares the verdicts with the state of each alert of r.
func (a *Alerter) transitions(r Row, now time.Time) []Alert {
	var out []Alert
	a.mu.RLock()
	defer a.mu.RUnlock()
	verdicts := a.verdicts(r, now)
	for _, rule := range []Rule{BehindPace, Projection, Stale} {
		v, ok := verdicts[rule]
		if !ok {
			continue
		}
		cur, known := a.state[key(rule, r.region(), r.Year)]
		firing := known && cur.State == Firing
		al := Alert{
			Rule: rule, Severity: v.severity, Year: r.Year, RegionCode: r.region(), ProvinceCode: r.ProvinceCode,
			CityCode: r.CityCode, RegionName: r.Name, AttainmentPct: r.AttainmentPct, ExpectedPct: r.ExpectedPct,
			Target: r.Target, Activated: r.Activated, Message: v.message, At: stamp(now, cur, known),
		}
		switch {
		case !firing && v.enter:
			al.State, al.AlertID = Firing, newAlertID(rule, al.RegionCode, r.Year, al.At)
		case firing && v.leave:
			al.State, al.AlertID, al.Severity = Resolved, cur.AlertID, cur.Severity
		case firing && v.severity.rank() > cur.Severity.rank() && !v.leave:
			al.State, al.AlertID = Firing, cur.AlertID // escalation
		default:
			continue
		}
		out = append(out, al)
	}
	return out
}
