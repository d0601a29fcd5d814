package alerter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// brief is a verdict as "enter", "leave" or "-", with its severity.
func (v verdict) brief() string {
	switch {
	case v.enter:
		return "enter " + string(v.severity)
	case v.leave:
		return "leave"
	}
	return "-"
}

func TestBehindPaceAndProjectionVerdictsAtTheirEdges(t *testing.T) {
	cfg := DefaultConfig() // margin 5, critical below half, hysteresis 2
	cfg.StaleDays = 0
	now := time.Date(2023, 2, 13, 5, 0, 0, 0, time.UTC)
	// Expected 12.05 %: behind_pace fires below 7.05, is critical below
	// 6.025 and leaves at 9.05; the projection fires below 12.05 and leaves
	// at 102 % of the target, 12.291.
	for _, tc := range []struct {
		attained       float64
		pace, forecast string
	}{
		{3, "enter critical", "enter warning"},
		{6.02, "enter critical", "enter warning"},
		{6.03, "enter warning", "enter warning"},
		{7.04, "enter warning", "enter warning"},
		{7.06, "-", "enter warning"},
		{9.04, "-", "enter warning"},
		{9.06, "leave", "enter warning"},
		{12.04, "leave", "enter warning"},
		{12.06, "leave", "-"},
		{12.28, "leave", "-"},
		{12.3, "leave", "leave"},
		{40, "leave", "leave"},
	} {
		t.Run(fmt.Sprint(tc.attained), func(t *testing.T) {
			r := Row{Year: 2023, ProvinceCode: "17", CityCode: "17.71", Name: "Kota Bengkulu", Target: 1000,
				Activated: uint64(tc.attained * 10), AttainmentPct: tc.attained, ExpectedPct: 12.05}
			vs := verdicts(cfg, r, now)
			if _, ok := vs[Stale]; ok || len(vs) != 2 {
				t.Fatalf("verdicts %v; want behind_pace and projection only, stale being off", vs)
			}
			if got := vs[BehindPace].brief(); got != tc.pace {
				t.Errorf("behind_pace: %s, want %s", got, tc.pace)
			}
			if got := vs[Projection].brief(); got != tc.forecast {
				t.Errorf("projection: %s, want %s", got, tc.forecast)
			}
		})
	}
}

func TestNoRuleAppliesToARegionWithoutTargetOrPace(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Date(2023, 2, 13, 5, 0, 0, 0, time.UTC)
	for name, r := range map[string]Row{
		"no target":             {Year: 2023, ProvinceCode: "17", ExpectedPct: 12.05},
		"none of the year gone": {Year: 2023, ProvinceCode: "17", Target: 1000},
	} {
		if vs := verdicts(cfg, r, now); len(vs) != 0 {
			t.Errorf("%s: verdicts %v, want none", name, vs)
		}
	}
}

func TestStaleCountsFromTheLastActivationOrTheStartOfTheYear(t *testing.T) {
	// Midday of 13 February 2023 in WIB; 43.5 days since the year began there.
	now := time.Date(2023, 2, 13, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		staleDays int
		last      time.Time
		want      string // brief, and the message after "Kota Bengkulu: "
	}{
		{"active 12 days ago", 14, now.Add(-12 * 24 * time.Hour), "leave / no activation for 12 days"},
		{"idle exactly the limit", 14, now.Add(-14 * 24 * time.Hour), "enter warning / no activation for 14 days"},
		{"idle 24 days", 14, now.Add(-24 * 24 * time.Hour), "enter warning / no activation for 24 days"},
		{"never active", 14, time.Time{}, "enter warning / no activation yet in 2023 (43 days)"},
		{"last active the year before", 14, time.Date(2022, 12, 30, 0, 0, 0, 0, time.UTC), "enter warning / no activation yet in 2023 (43 days)"},
		{"never active, a longer limit", 60, time.Time{}, "leave / no activation yet in 2023 (43 days)"},
		{"rule off", 0, time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.StaleDays = tc.staleDays
			r := Row{Year: 2023, ProvinceCode: "17", CityCode: "17.71", Name: "Kota Bengkulu", Target: 1000,
				AttainmentPct: 20, ExpectedPct: 12.05, LastActivationAt: tc.last}
			v, ok := verdicts(cfg, r, now)[Stale]
			got := ""
			if ok {
				got = v.brief() + " / " + strings.TrimPrefix(v.message, "Kota Bengkulu: ")
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTheYearEndResolvesOnlyAlertsStillFiringForAYearGoneInWIB(t *testing.T) {
	at := time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	alert := func(rule Rule, region string, year int, state State) Alert {
		return Alert{Rule: rule, RegionCode: region, Year: year, State: state, Severity: Critical, AlertID: region + "-id",
			RegionName: "Region " + region, At: at}
	}
	state := map[string]Alert{}
	for _, al := range []Alert{
		alert(BehindPace, "17", 2023, Firing),
		alert(Projection, "17.71", 2023, Firing),
		alert(Stale, "18", 2023, Resolved),
		alert(BehindPace, "19", 2022, Firing),
		alert(BehindPace, "20", 2024, Firing),
	} {
		state[al.Key()] = al
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		want []string
	}{
		{"23:59 on 31 December in WIB", time.Date(2023, 12, 31, 16, 59, 0, 0, time.UTC),
			[]string{"behind_pace/19/2022"}},
		{"00:30 on 1 January in WIB, still December in UTC", time.Date(2023, 12, 31, 17, 30, 0, 0, time.UTC),
			[]string{"behind_pace/17/2023", "behind_pace/19/2022", "projection/17.71/2023"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := yearEnded(state, tc.now)
			var keys []string
			for _, al := range got {
				keys = append(keys, al.Key())
				cur := state[al.Key()]
				if al.State != Resolved || al.AlertID != cur.AlertID || al.Severity != cur.Severity || !al.At.After(cur.At) {
					t.Errorf("%s resolved as %+v; want its id and severity, after %v", al.Key(), al, cur.At)
				}
				if want := fmt.Sprintf("Region %s: year %d ended with the alert firing", cur.RegionCode, cur.Year); al.Message != want {
					t.Errorf("message %q, want %q", al.Message, want)
				}
			}
			if !slices.Equal(keys, tc.want) {
				t.Errorf("resolved %v, want %v (in key order)", keys, tc.want)
			}
		})
	}
}

func TestTheTransitionsOfOneAlertAreOrderedEvenUnderAFrozenClock(t *testing.T) {
	now := time.Date(2023, 2, 13, 12, 0, 0, 123456789, time.FixedZone("WIB", 7*3600))
	nowMs := time.Date(2023, 2, 13, 5, 0, 0, 123000000, time.UTC)
	for _, tc := range []struct {
		name  string
		cur   time.Time
		known bool
		want  time.Time
	}{
		{"first transition: now, in UTC, to the millisecond", time.Time{}, false, nowMs},
		{"after an earlier one: now", nowMs.Add(-time.Hour), true, nowMs},
		{"the clock has not moved: just after", nowMs, true, nowMs.Add(time.Millisecond)},
		{"the clock went back: just after", nowMs.Add(time.Hour), true, nowMs.Add(time.Hour + time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stamp(now, Alert{At: tc.cur}, tc.known)
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v in UTC", got, tc.want)
			}
		})
	}
}

func TestAnnouncedCitiesAreEvaluatedOnceWithTheirProvincesAndNothingElse(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		cities, wantC, wantProvs []string
	}{
		{"none", nil, nil, nil},
		{"one city", []string{"17.71"}, []string{"17.71"}, []string{"17"}},
		{"repeats and two provinces", []string{"17.71", "18.71", "17.71", "17.02"}, []string{"17.71", "18.71", "17.02"}, []string{"17", "18"}},
		{"not city codes", []string{"17", "17.7", "17.71.01", "17.71' OR 1=1 --", ""}, nil, nil},
		{"good among bad", []string{"x", "31.74"}, []string{"31.74"}, []string{"31"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, ps := regionsOf(tc.cities)
			if !slices.Equal(cs, tc.wantC) || !slices.Equal(ps, tc.wantProvs) {
				t.Errorf("got %v %v, want %v %v", cs, ps, tc.wantC, tc.wantProvs)
			}
		})
	}
}

func TestAnAnnouncementNamesItsCitiesOrIsUnreadable(t *testing.T) {
	for _, tc := range []struct {
		data       string
		want       []string
		unreadable bool
	}{
		{`{"cities":["17.71","18.71"],"years":[2023],"events":3,"at":"2023-02-13T05:00:00Z"}`, []string{"17.71", "18.71"}, false},
		{`{"years":[2023],"events":0}`, nil, false},
		{`{"cities":"17.71"}`, nil, true},
		{`not json`, nil, true},
	} {
		got, err := announcedCities([]byte(tc.data))
		if !slices.Equal(got, tc.want) || (err != nil) != tc.unreadable {
			t.Errorf("%s: got %v, %v; want %v, unreadable %v", tc.data, got, err, tc.want, tc.unreadable)
		}
	}
}

func TestAWebhookAnswerIsRetriedOnlyWhenARepostMayBeTaken(t *testing.T) {
	const taken, retried, refused = "taken", "retried", "refused"
	for _, tc := range []struct {
		code int
		want string
	}{
		{200, taken}, {202, taken}, {204, taken},
		{500, retried}, {502, retried}, {503, retried}, {429, retried}, {408, retried},
		{301, refused}, {400, refused}, {401, refused}, {403, refused}, {404, refused}, {410, refused}, {422, refused},
	} {
		err := judgeAnswer(tc.code, http.StatusText(tc.code))
		got := retried
		switch {
		case err == nil:
			got = taken
		case errors.As(err, new(*refusedError)):
			got = refused
		}
		if got != tc.want {
			t.Errorf("HTTP %d: %s (%v), want %s", tc.code, got, err, tc.want)
		}
	}
}

func TestAFailedFetchIsQuietEndsRunAsksOrIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		stopping bool
		want     fetchOutcome
	}{
		{"the wait ran out", nats.ErrTimeout, false, fetchQuiet},
		{"nothing to fetch", jetstream.ErrNoMessages, false, fetchQuiet},
		{"the changes window ended first", context.DeadlineExceeded, false, fetchQuiet},
		{"shutting down, whatever failed", errors.New("connection closed"), true, fetchQuiet},
		{"consumer deleted during the fetch", jetstream.ErrConsumerDeleted, false, fetchGone},
		{"consumer not found", fmt.Errorf("fetch: %w", jetstream.ErrConsumerNotFound), false, fetchGone},
		{"no responders: perhaps deleted between fetches", nats.ErrNoResponders, false, fetchAsk},
		{"connection closed", nats.ErrConnectionClosed, false, fetchRetry},
		{"anything else", errors.New("odd"), false, fetchRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := judgeFetch(tc.err, tc.stopping); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestAWindowEndsAtItsDeadlineEvenBeforeItsTimerFires(t *testing.T) {
	// The window's timer cannot fire during the test; the rows move the clock.
	deadline := time.Now().Add(time.Hour)
	open, cancelOpen := context.WithDeadline(context.Background(), deadline)
	defer cancelOpen()
	stopped, stop := context.WithCancel(context.Background())
	stop()
	for _, tc := range []struct {
		name   string
		window context.Context
		now    time.Time
		want   error
	}{
		{"before its deadline", open, deadline.Add(-time.Millisecond), nil},
		{"at its deadline, its timer not yet fired", open, deadline, context.DeadlineExceeded},
		{"after its deadline", open, deadline.Add(time.Millisecond), context.DeadlineExceeded},
		{"Run stopped", stopped, deadline, context.Canceled},
		{"no deadline", context.Background(), deadline, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := windowEnded(tc.window, tc.now); !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFiringListsOnlyTheAlertsFiringNow(t *testing.T) {
	state := map[string]Alert{}
	for _, al := range []Alert{
		{Rule: BehindPace, RegionCode: "17", Year: 2023, State: Firing},
		{Rule: Projection, RegionCode: "17", Year: 2023, State: Resolved},
		{Rule: Stale, RegionCode: "17.71", Year: 2023, State: Firing},
	} {
		state[al.Key()] = al
	}
	got := firing(state)
	if len(got) != 2 || got["behind_pace/17/2023"].State != Firing || got["stale/17.71/2023"].State != Firing {
		t.Errorf("firing %v", got)
	}
	if len(firing(nil)) != 0 {
		t.Error("firing of no state is not empty")
	}
}
