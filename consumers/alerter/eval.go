package alerter

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// The rules, apart from the broker and the warehouse: which transitions a
// region's figures and the latest transition of each of its alerts give is a
// function of those alone, so replicas agree and tests need no server.

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

// yearEnded resolves the alerts of state still firing for a year before
// now's year in WIB (as the warehouse counts years): only the current year is
// evaluated, so nothing else would ever resolve them.
func yearEnded(state map[string]Alert, now time.Time) []Alert {
	year := now.In(events.WIB).Year()
	var out []Alert
	for _, cur := range state {
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

// firing is the alerts of state that are firing.
func firing(state map[string]Alert) map[string]Alert {
	out := make(map[string]Alert)
	for k, al := range state {
		if al.State == Firing {
			out[k] = al
		}
	}
	return out
}

// regionsOf is the well-formed city codes among cities, each once, and
// their provinces: what an announcement asks to evaluate. A code that is
// not a city's is dropped, so that nothing else reaches a query.
func regionsOf(cities []string) (cs, ps []string) {
	seen := map[string]bool{} // a window's announcements name most cities many times
	for _, c := range cities {
		if seen[c] || !cityCode.MatchString(c) {
			continue
		}
		seen[c] = true
		cs = append(cs, c)
		if p := provinceOf(c); !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return cs, ps
}

func provinceOf(city string) string {
	p, _, _ := strings.Cut(city, ".")
	return p
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
