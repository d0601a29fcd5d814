package papan

import (
	"testing"
	"time"
)

func TestThePipelineIsHealthyWhileEventsAreCountedLately(t *testing.T) {
	now := time.Date(2023, 2, 13, 3, 0, 0, 0, time.UTC) // 10.00 WIB
	for _, tc := range []struct {
		name   string
		newest time.Time
		lang   Lang
		status string
		text   string
	}{
		{"nothing counted yet", time.Time{}, Indonesian, "empty", "belum ada kejadian terhitung"},
		{"counted a minute ago", now.Add(-time.Minute), Indonesian, "ok", "sehat"},
		{"counted exactly at the limit", now.Add(-15 * time.Minute), English, "ok", "healthy"},
		{"nothing new for an hour", now.Add(-time.Hour), Indonesian, "stale", "tersendat: tidak ada kejadian baru terhitung sejak 13 Februari 2023 09.00 WIB"},
		{"nothing new for an hour, in English", now.Add(-time.Hour), English, "stale", "lagging: no new event counted since 13 February 2023 09:00 WIB"},
	} {
		h := Health(tc.newest, now, 15*time.Minute, tc.lang)
		if h.Status != tc.status || h.Text != tc.text {
			t.Errorf("%s: %q %q, want %q %q", tc.name, h.Status, h.Text, tc.status, tc.text)
		}
	}
}
