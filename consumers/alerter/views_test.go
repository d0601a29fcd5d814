package alerter_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/events"
)

// An evaluation as of today reads the running views; any other day, the
// as-of views at that day. Days are WIB days: 17:00 UTC is already the next
// day in Jakarta.
func TestTodayIsTheWallClocksDayInWIB(t *testing.T) {
	wall := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // 17:00 WIB
	for _, tc := range []struct {
		name  string
		now   time.Time
		today bool
	}{
		{"now", wall, true},
		{"earlier the same WIB day", time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC), true},
		{"the WIB day before", time.Date(2026, 11, 30, 16, 59, 0, 0, time.UTC), false},
		{"the same UTC date, the next WIB day", time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC), false},
		{"a year earlier", wall.AddDate(-1, 0, 0), false},
	} {
		if got := alerter.Today(tc.now, wall); got != tc.today {
			t.Errorf("%s: today %v, want %v", tc.name, got, tc.today)
		}
	}
}

// An evaluation as of today reads the running views: the rows it gets, for
// every region and for named cities, are those the as-of views give for
// today's date.
func TestTodaysRowsAreTheSameFromTheRunningViewsAsFromTheAsOfViews(t *testing.T) {
	e := start(t)
	e.alerter(t, testConfig()) // applies the schema
	now := time.Now()
	year := now.In(events.WIB).Year()
	for _, city := range []string{"17.71", "18.71"} {
		// Activations over the last 20 days, none before this year began.
		e.exec(t, `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
			SELECT concat(?, '-today-', toString(number)), 'activation', lower(hex(MD5(concat(?, '-today-', toString(number))))),
				splitByChar('.', ?)[1], ?, concat(?, '.01'), 'OFF-01', 'counter',
				greatest(now64(3) - toIntervalSecond(3600 + (number * 7919) % (20 * 86400)), toDateTime64(toStartOfYear(now(), 'Asia/Jakarta'), 3)), number
			FROM numbers(40)`, city, city, city, city, city)
		e.exec(t, `INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline) VALUES (?, ?, 'absolute', 1000, 0)`, year, city)
	}
	for _, cities := range [][]string{nil, {"17.71"}} {
		running, err := alerter.ReadAttainment(e.ctx, e.conn, now, cities, true)
		if err != nil {
			t.Fatal(err)
		}
		asOf, err := alerter.ReadAttainment(e.ctx, e.conn, now, cities, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(running) == 0 || !reflect.DeepEqual(running, asOf) {
			t.Errorf("cities %v: the running views give\n%+v\nthe as-of views\n%+v", cities, running, asOf)
		}
	}
}
