package alerter

import (
	"context"
	"errors"
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
	LastActivationAt time.Time // zero when there was none
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
	// Other alerters may have recorded transitions since: start from what
	// ikd.alerts holds, the one history every replica shares.
	if err := a.load(ctx); err != nil {
		return err
	}
	now := a.Now()
	rows, err := a.query(ctx, now, cities)
	if err != nil {
		return err
	}
	a.Stats.Evaluations.Add(1)
	changes := a.yearEnded(now)
	for _, r := range rows {
		a.mu.RLock()
		changes = append(changes, transitions(a.cfg, a.state, r, now)...)
		a.mu.RUnlock()
	}
	return a.apply(ctx, changes)
}

// apply publishes each transition, then records it and takes it into the
// state. The publication goes first, under the transition's Nats-Msg-Id, so
// that an alerter dying between the two leaves the transition unrecorded, and
// another alerter (or this one, next time) finds it again: the broker drops
// the repeated publication within its duplicate window, and ikd.alerts drops
// the repeated row by its insert token. Only the alerter whose publication
// was new logs it and posts it to the webhook. A transition that could not be
// published is neither recorded nor taken, so the next evaluation tries again.
func (a *Alerter) apply(ctx context.Context, changes []Alert) error {
	var errs []error
	for _, al := range changes {
		fresh, err := a.publish(ctx, al)
		if err == nil {
			err = a.record(ctx, al)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.mu.Lock()
		a.state[al.Key()] = al
		a.mu.Unlock()
		if !fresh {
			continue
		}
		if al.State == Firing {
			a.Stats.Fired.Add(1)
		} else {
			a.Stats.Resolved.Add(1)
		}
		a.logger.Info("alert", "rule", al.Rule, "state", al.State, "severity", al.Severity, "region", al.RegionCode, "year", al.Year, "alert_id", al.AlertID, "message", al.Message)
		a.post(al)
	}
	return errors.Join(errs...)
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
// the current year is that of as_of, now's day in WIB. Every value is a bound
// parameter.
func (a *Alerter) query(ctx context.Context, now time.Time, cities []string) ([]Row, error) {
	day := now.In(events.WIB).Format("2006-01-02")
	const where = " WHERE year = toYear(as_of) AND target > 0 AND expected_pct > 0"
	cityQuery := `SELECT year, province_code, city_code, city_name, activated, target, attainment_pct, expected_pct, last_activation_at
		 FROM ikd.attainment_city_as_of(as_of = ?)` + where
	provinceQuery := `SELECT year, province_code, '', province_name, activated, target, attainment_pct, expected_pct, last_activation_at
		 FROM ikd.attainment_province_as_of(as_of = ?)` + where
	cityArgs, provinceArgs := []any{day}, []any{day}
	if cities != nil {
		var cs, ps []string
		for _, c := range cities {
			if !cityCode.MatchString(c) {
				continue
			}
			if !slices.Contains(cs, c) {
				cs = append(cs, c)
			}
			if p := provinceOf(c); !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
		if len(cs) == 0 {
			return nil, nil
		}
		cityQuery += " AND has(?, city_code)"
		provinceQuery += " AND has(?, province_code)"
		cityArgs, provinceArgs = append(cityArgs, cs), append(provinceArgs, ps)
	}
	var out []Row
	for _, q := range []struct {
		sql  string
		args []any
	}{{cityQuery, cityArgs}, {provinceQuery, provinceArgs}} {
		rows, err := a.conn.Query(ctx, q.sql, q.args...)
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

// verdict is what a rule says about a region now.
type verdict struct {
	enter, leave bool
	severity     Severity
	message      string
}

// verdicts applies each rule of c to r as of now.
func verdicts(c Config, r Row, now time.Time) map[Rule]verdict {
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

// transitions compares the rules' verdicts on r as of now with state, the
// latest transition of each alert by Key(), and returns the new transitions.
// It depends on nothing else, so every alerter that reads the same history
// and figures returns the same transitions with the same alert ids: what
// lets replicas run side by side.
func transitions(c Config, state map[string]Alert, r Row, now time.Time) []Alert {
	var out []Alert
	vs := verdicts(c, r, now)
	for _, rule := range []Rule{BehindPace, Projection, Stale} {
		v, ok := vs[rule]
		if !ok {
			continue
		}
		cur, known := state[key(rule, r.region(), r.Year)]
		firing := known && cur.State == Firing
		al := Alert{
			Rule: rule, Severity: v.severity, Year: r.Year, RegionCode: r.region(), ProvinceCode: r.ProvinceCode,
			CityCode: r.CityCode, RegionName: r.Name, AttainmentPct: r.AttainmentPct, ExpectedPct: r.ExpectedPct,
			Target: r.Target, Activated: r.Activated, Message: v.message, At: stamp(now, cur, known),
		}
		switch {
		case !firing && v.enter:
			al.State, al.AlertID = Firing, episodeID(rule, al.RegionCode, r.Year, cur.AlertID)
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
