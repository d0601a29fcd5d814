package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// ticking is a clock that advances a millisecond per call, so that every
// event has its own time.
func ticking() func() time.Time {
	t := time.Date(2023, 2, 13, 2, 30, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

func generate(t *testing.T, seed int64, n int) [][]byte {
	t.Helper()
	ref, err := region.Load()
	if err != nil {
		t.Fatalf("region.Load: %v", err)
	}
	g, err := newGenerator(ref, seed)
	if err != nil {
		t.Fatalf("newGenerator: %v", err)
	}
	now := ticking()
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = g.line(now())
	}
	return lines
}

func TestTheSameSeedGivesTheSameLines(t *testing.T) {
	tests := []struct {
		name  string
		seed  int64
		equal bool
	}{
		{"same seed", 42, true},
		{"other seed", 43, false},
	}
	want := generate(t, 42, 10_000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := generate(t, tt.seed, len(want))
			same := true
			for i := range got {
				same = same && bytes.Equal(got[i], want[i])
			}
			if same != tt.equal {
				t.Errorf("lines equal to seed 42's: %v, want %v", same, tt.equal)
			}
		})
	}
}

func TestGeneratedLinesFollowTheDocumentedMix(t *testing.T) {
	const n = 100_000
	b := testenv.Builder(t)
	officePattern := regexp.MustCompile(`^[0-9]{4}-OFF-01$`)
	var enrolments, activations, away, outreach, repeats int
	activated := map[string]bool{}
	provinces, cities := map[string]int{}, map[string]bool{}
	for i, data := range generate(t, 1, n) {
		ev, err := b.Build(data)
		if err != nil {
			t.Fatalf("line %d %s rejected: %v", i, data, err)
		}
		if !officePattern.MatchString(ev.OfficeID) {
			t.Fatalf("line %d: office %q", i, ev.OfficeID)
		}
		provinces[ev.ProvinceCode]++
		cities[ev.CityCode] = true
		if ev.Type == events.TypeEnrolment {
			enrolments++
			continue
		}
		activations++
		if ev.OfficeID[:2] != ev.ProvinceCode {
			away++
		}
		if ev.Channel == events.ChannelOutreach {
			outreach++
		}
		if activated[ev.Resident] {
			repeats++
		}
		activated[ev.Resident] = true
	}

	shares := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"enrolments of events", float64(enrolments) / n, 0.29, 0.31},
		{"away of activations", float64(away) / float64(activations), 0.09, 0.11},
		{"outreach of activations", float64(outreach) / float64(activations), 0.14, 0.16},
		// Repeats start once 4,096 residents have activated.
		{"repeats of activations", float64(repeats) / float64(activations), 0.04, 0.055},
	}
	for _, s := range shares {
		if s.got < s.min || s.got > s.max {
			t.Errorf("%s = %.3f, want %.3f to %.3f", s.name, s.got, s.min, s.max)
		}
	}
	if len(provinces) != 38 || len(cities) != 514 {
		t.Errorf("domiciles in %d provinces and %d cities, want 38 and 514", len(provinces), len(cities))
	}
	checkDistrictWeights(t, b.Ref, provinces, n)
}

// checkDistrictWeights checks that each province is a domicile as often as
// its share of the districts says.
func checkDistrictWeights(t *testing.T, ref *region.Reference, provinces map[string]int, n int) {
	t.Helper()
	districts := map[string]int{}
	all := ref.Districts()
	for _, d := range all {
		districts[d.Code[:2]]++
	}
	for code, count := range provinces {
		want := float64(districts[code]) / float64(len(all)) * float64(n)
		// Five standard deviations of a binomial count.
		if tolerance := 5 * math.Sqrt(want); math.Abs(float64(count)-want) > tolerance {
			t.Errorf("province %s is the domicile of %d events, want %.0f ± %.0f", code, count, want, tolerance)
		}
	}
}

func TestOfficesKeepTheirLocalTime(t *testing.T) {
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGenerator(ref, 7)
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{"31": "+07:00", "51": "+08:00", "73": "+08:00", "91": "+09:00", "82": "+09:00"}
	seen := map[string]bool{}
	for len(seen) < len(zones) {
		var l line
		if err := json.Unmarshal(g.line(time.Now()), &l); err != nil {
			t.Fatal(err)
		}
		want, ok := zones[l.OfficeID[:2]]
		if !ok {
			continue
		}
		seen[l.OfficeID[:2]] = true
		if got := l.OccurredAt[len(l.OccurredAt)-6:]; got != want {
			t.Errorf("office %s: occurred_at %s, want offset %s", l.OfficeID, l.OccurredAt, want)
		}
	}
}

func TestZeroRateDoesNothing(t *testing.T) {
	start := time.Now()
	// Nothing is touched: neither builder nor publisher exists.
	if err := Run(t.Context(), Config{Rate: 0, Duration: time.Hour}, nil, nil, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Run with rate 0 took %s", time.Since(start))
	}
}

func TestRunPublishesAtTheRateForTheDuration(t *testing.T) {
	// A rate well under what a broker syncing every write takes on a busy
	// machine (about 1,000 events/s), so that the simulator sets the pace.
	const rate, duration = 200, 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, js := testenv.JetStream(t, testenv.Broker(t).URL())
	pub, err := publish.New(nc, publish.Options{}, logger)
	if err != nil {
		t.Fatal(err)
	}

	var reports []Progress
	start := time.Now()
	err = Run(ctx, Config{Rate: rate, Duration: duration, Seed: 1}, testenv.Builder(t), pub, func(p Progress) { reports = append(reports, p) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed := time.Since(start); elapsed < duration || elapsed > duration+time.Second {
		t.Errorf("Run took %s, want about %s", elapsed, duration)
	}
	if len(reports) != 2 {
		t.Errorf("%d progress reports in %s, want one a second and one at the end", len(reports), duration)
	}
	last := reports[len(reports)-1]
	if want := int(rate * duration.Seconds()); last.Sent != want || last.Acked != want {
		t.Errorf("final progress %+v, want %d sent and acked", last, want)
	}
	if first := reports[0]; math.Abs(first.Rate-rate) > rate/5 {
		t.Errorf("first reported rate %.0f/s, want about %d/s", first.Rate, rate)
	}
	if n := testenv.StreamInfo(t, js, broker.EventsStream).State.Msgs; n != uint64(last.Acked) {
		t.Errorf("stream holds %d events, want the %d acked", n, last.Acked)
	}
}
