package alerter_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// newYear is 00:30 WIB on 1 January 2024, given in UTC, where it is still 31
// December 2023: only a year counted in WIB has turned.
var newYear = time.Date(2023, 12, 31, 17, 30, 0, 0, time.UTC)

func TestFiringAlertsResolveWhenTheYearTurnsInWIB(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig())
	e.february(t)
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	fired := a.Firing()
	a.Now = func() time.Time { return newYear }
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"behind_pace/17/firing/critical", "projection/17/firing/warning",
		"behind_pace/17/resolved/critical", "projection/17/resolved/warning"}
	if got := e.rows(t); !slices.Equal(got, want) {
		t.Fatalf("ikd.alerts: got %v want %v", got, want)
	}
	if f := a.Firing(); len(f) != 0 {
		t.Fatalf("still firing in 2024: %v", f)
	}
	for k, al := range e.resolutions(t) {
		if al.id != fired[k].AlertID || !strings.Contains(al.message, "year 2023 ended") {
			t.Errorf("%s resolved as %+v, fired as %s", k, al, fired[k].AlertID)
		}
	}
	pub := e.published(t, broker.AlertsPrefix+".*.17.>")
	slices.Sort(pub)
	if wantPub := []string{"ikd.alerts.v1.critical.17._ firing", "ikd.alerts.v1.critical.17._ resolved",
		"ikd.alerts.v1.warning.17._ firing", "ikd.alerts.v1.warning.17._ resolved"}; !slices.Equal(pub, wantPub) {
		t.Fatalf("published: got %v want %v", pub, wantPub)
	}

	// Neither evaluating again nor a restart resolves or fires anything more.
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	b := e.alerter(t, testConfig())
	b.Now = func() time.Time { return newYear }
	if err := b.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t); !slices.Equal(got, want) {
		t.Fatalf("after re-evaluation and restart, ikd.alerts: got %v want %v", got, want)
	}
}

func TestAnnouncementOfOnlyAPastYearDoesNotFireItAgain(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig())
	e.february(t)
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	a.Now = func() time.Time { return newYear.Add(9 * 24 * time.Hour) }
	e.runInBackground(t, a)
	waitFor(t, func() bool { return a.Stats.Evaluations.Load() >= 2 && len(a.Firing()) == 0 })
	// A late activation of 2023, still behind pace, as the aggregator announces it.
	e.exec(t, `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
		VALUES ('late', 'activation', 'late-1', '17', '17.71', '17.71.01', 'OFF-01', 'counter', '2023-12-31 10:00:00', 1)`)
	if _, err := e.js.Publish(e.ctx, broker.ChangesPrefix+".batch",
		[]byte(`{"cities":["17.71"],"years":[2023],"events":1,"at":"2024-01-10T05:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.Stats.Evaluations.Load() >= 3 })
	if f := a.Firing(); len(f) != 0 {
		t.Fatalf("firing after a 2023 announcement in 2024: %v", f)
	}
	want := []string{"behind_pace/17/firing/critical", "projection/17/firing/warning",
		"behind_pace/17/resolved/critical", "projection/17/resolved/warning"}
	if got := e.rows(t); !slices.Equal(got, want) {
		t.Fatalf("ikd.alerts: got %v want %v", got, want)
	}
}

type resolution struct{ id, message string }

// resolutions returns the alert_id and message of every resolution, by key.
func (e *env) resolutions(t *testing.T) map[string]resolution {
	t.Helper()
	rs, err := e.conn.Query(e.ctx, "SELECT rule, region_code, toInt32(year), alert_id, message FROM ikd.alerts WHERE state = 'resolved'")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]resolution{}
	for rs.Next() {
		var rule, region string
		var year int32
		var r resolution
		if err := rs.Scan(&rule, &region, &year, &r.id, &r.message); err != nil {
			t.Fatal(err)
		}
		out[rule+"/"+region+"/"+strconv.Itoa(int(year))] = r
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
