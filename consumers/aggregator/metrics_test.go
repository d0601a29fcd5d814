package aggregator

import (
	"testing"
	"time"
)

func TestFreshnessIsTheAgeOfTheNewestCountedEventOrOfTheProcessBeforeTheFirst(t *testing.T) {
	started := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	now := started.Add(time.Hour)
	tests := []struct {
		name               string
		newest             time.Time
		wantStamp, wantAge float64
	}{
		{"nothing counted yet: the age runs from the start", time.Time{}, 0, 3600},
		{"an event five minutes old", now.Add(-5 * time.Minute), float64(now.Add(-5 * time.Minute).Unix()), 300},
		{"an event from the near future is fresh, not negative", now.Add(time.Minute), float64(now.Add(time.Minute).Unix()), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nanos int64
			if !tt.newest.IsZero() {
				nanos = tt.newest.UnixNano()
			}
			stamp, age := freshness(nanos, started, now)
			if stamp != tt.wantStamp || age != tt.wantAge {
				t.Errorf("freshness = %v, %v; want %v, %v", stamp, age, tt.wantStamp, tt.wantAge)
			}
		})
	}
}

func TestTheNewestCountedEventIsTheLatestOccurredAtWhateverTheOrder(t *testing.T) {
	m := newMetrics()
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	batch := func(offsets ...time.Duration) []pending {
		var b []pending
		for _, o := range offsets {
			var p pending
			p.record.OccurredAt = at.Add(o)
			b = append(b, p)
		}
		return b
	}
	m.counted(batch(time.Minute, 3*time.Minute, 0))
	m.counted(batch(-time.Hour)) // a late event from an office back online
	if got := time.Unix(0, m.newest.Load()).UTC(); !got.Equal(at.Add(3 * time.Minute)) {
		t.Errorf("newest = %s; want %s", got, at.Add(3*time.Minute))
	}
}
