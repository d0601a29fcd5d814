package alerter

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The rules as a pure function: what transitions a region's figures and the
// latest transition of each of its alerts give, with which alert ids.
func TestTransitionsFollowTheRulesAndNameEpisodesFromTheirHistory(t *testing.T) {
	cfg := DefaultConfig() // margin 5, critical below half, hysteresis 2
	cfg.StaleDays = 0
	now := time.Date(2023, 2, 13, 5, 0, 0, 0, time.UTC)
	row := func(attained float64) Row {
		return Row{Year: 2023, ProvinceCode: "17", CityCode: "17.71", Name: "Kota Bengkulu", Target: 1000,
			Activated: uint64(attained * 10), AttainmentPct: attained, ExpectedPct: 12.05}
	}
	was := func(rule Rule, state State, severity Severity, id string) Alert {
		return Alert{Rule: rule, State: state, Severity: severity, AlertID: id, Year: 2023, RegionCode: "17.71", At: now.Add(-time.Hour)}
	}
	first := func(rule Rule) string { return episodeID(rule, "17.71", 2023, "") }
	for _, tc := range []struct {
		name  string
		state []Alert
		row   Row
		want  []string // "rule state severity alert_id"
	}{
		{"far behind with no history: both fire, behind_pace critical, first episodes", nil, row(3),
			[]string{"behind_pace firing critical " + first(BehindPace), "projection firing warning " + first(Projection)}},
		{"just behind: behind_pace fires as a warning", nil, row(7),
			[]string{"behind_pace firing warning " + first(BehindPace), "projection firing warning " + first(Projection)}},
		{"firing as a warning, falls under half of expected: escalates in its episode",
			[]Alert{was(BehindPace, Firing, Warning, "x"), was(Projection, Firing, Warning, "p")}, row(5),
			[]string{"behind_pace firing critical x"}},
		{"firing, back inside the hysteresis band: nothing",
			[]Alert{was(BehindPace, Firing, Critical, "x"), was(Projection, Firing, Warning, "p")}, row(8), nil},
		{"firing, past the band: resolves with its id and severity",
			[]Alert{was(BehindPace, Firing, Critical, "x"), was(Projection, Firing, Warning, "p")}, row(9.1),
			[]string{"behind_pace resolved critical x"}},
		{"resolved, behind again: a new episode named from the last",
			[]Alert{was(BehindPace, Resolved, Warning, "x"), was(Projection, Firing, Warning, "p")}, row(3),
			[]string{"behind_pace firing critical " + episodeID(BehindPace, "17.71", 2023, "x")}},
		{"projection on pace but inside its band: stays firing",
			[]Alert{was(BehindPace, Resolved, Warning, "x"), was(Projection, Firing, Warning, "p")}, row(12.2), nil},
		{"projection past its band: resolves",
			[]Alert{was(BehindPace, Resolved, Warning, "x"), was(Projection, Firing, Warning, "p")}, row(12.4),
			[]string{"projection resolved warning p"}},
		{"no target: no rule applies", nil, Row{Year: 2023, ProvinceCode: "17", CityCode: "17.71", ExpectedPct: 12.05}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := map[string]Alert{}
			for _, al := range tc.state {
				state[al.Key()] = al
			}
			got := transitions(cfg, state, tc.row, now)
			var brief []string
			for _, al := range got {
				brief = append(brief, fmt.Sprintf("%s %s %s %s", al.Rule, al.State, al.Severity, al.AlertID))
				if !al.At.After(now.Add(-time.Hour)) {
					t.Errorf("%s at %v, not after the transition before it", al.Key(), al.At)
				}
			}
			if !slices.Equal(brief, tc.want) {
				t.Errorf("got %q\nwant %q", brief, tc.want)
			}
			// A replica with the same history and figures says the same.
			if again := transitions(cfg, state, tc.row, now); !slices.EqualFunc(got, again, func(a, b Alert) bool { return a == b }) {
				t.Errorf("a second evaluation differs: %+v", again)
			}
		})
	}
}
