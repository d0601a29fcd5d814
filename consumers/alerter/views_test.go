package alerter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
)

// An evaluation as of today reads the running views, which are the as-of
// figures at today for less; any other day, the as-of views at that day.
// Days are WIB days: 17:00 UTC is already the next day in Jakarta.
func TestAnEvaluationOfTodayReadsTheRunningViews(t *testing.T) {
	wall := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // 17:00 WIB
	for _, tc := range []struct {
		name    string
		now     time.Time
		running bool
	}{
		{"now", wall, true},
		{"earlier the same WIB day", time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC), true},
		{"the WIB day before", time.Date(2026, 11, 30, 16, 59, 0, 0, time.UTC), false},
		{"the same UTC date, the next WIB day", time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC), false},
		{"a year earlier", wall.AddDate(-1, 0, 0), false},
	} {
		city, province := alerter.ViewsAsOf(tc.now, wall)
		asOf := strings.Contains(city, "as_of") || strings.Contains(province, "as_of")
		if asOf == tc.running {
			t.Errorf("%s: reads %s and %s, want the running views: %v", tc.name, city, province, tc.running)
		}
		if !tc.running && (!strings.Contains(city, "{as_of:Date}") || !strings.Contains(province, "{as_of:Date}")) {
			t.Errorf("%s: %s and %s are not read as of the evaluation's day", tc.name, city, province)
		}
	}
}
