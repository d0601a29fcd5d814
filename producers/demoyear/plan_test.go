package demoyear

import (
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/region"
)

func TestTheTargetIsAQuarterOfTheRecordedRoundedUp(t *testing.T) {
	for recorded, want := range map[uint64]uint64{0: 0, 4: 1, 5: 2, 271_208: 67_802, 200_000_000: 50_000_000} {
		if got := Target(recorded); got != want {
			t.Errorf("Target(%d) = %d, want %d", recorded, got, want)
		}
	}
}

func TestFactorsKeepMostCitiesNearPaceAndAFewFarBehind(t *testing.T) {
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	behind := 0
	for _, c := range ref.Cities() {
		f := factor(c.Code, 2026)
		if f < 0.35 || f > 1.3 {
			t.Errorf("%s: factor %v outside 0.35..1.3", c.Code, f)
		}
		if f < 0.7 {
			behind++
		}
		if factor(c.Code, 2026) != f {
			t.Errorf("%s: factor differs between calls", c.Code)
		}
	}
	if n := len(ref.Cities()); behind < n/25 || behind > n/6 {
		t.Errorf("%d of %d cities far behind; want a few (about 8 %%)", behind, n)
	}
}

func TestThePlanSizesCitiesByDistrictsAndFillsTheDaysGoneBy(t *testing.T) {
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		today                 time.Time
		scale                 float64
		wantRecorded          uint64 // nationally
		minShare, maxShare    float64
		bengkuluRecorded      uint64
		bengkuluTargetNearest uint64
	}{
		{"the registry's size, on 1 July", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), 1, 200_002_390, 0.4, 0.55, 247_086, 61_772},
		{"one fiftieth, on 1 January: nothing yet", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 0.02, 4_000_048, 0, 0, 4_942, 1_236},
	} {
		plan := Plan(ref, tc.today, tc.scale)
		if len(plan) != 514 {
			t.Fatalf("%s: %d cities planned, want 514", tc.name, len(plan))
		}
		var recorded, activations, target uint64
		for _, c := range plan {
			recorded += c.Recorded
			activations += c.Activations
			target += Target(c.Recorded)
			if c.Code == "17.71" && (c.Recorded != tc.bengkuluRecorded || Target(c.Recorded) != tc.bengkuluTargetNearest) {
				t.Errorf("%s: Kota Bengkulu recorded %d target %d, want %d and %d", tc.name, c.Recorded, Target(c.Recorded), tc.bengkuluRecorded, tc.bengkuluTargetNearest)
			}
			if c.RecordedLastYear >= c.Recorded && c.Recorded > 0 {
				t.Errorf("%s: %s recorded %d last year, %d now", tc.name, c.Code, c.RecordedLastYear, c.Recorded)
			}
			if c.ActivationsLastYear == 0 {
				t.Errorf("%s: %s had no activations last year", tc.name, c.Code)
			}
		}
		if d := int64(recorded) - int64(tc.wantRecorded); d < -1000 || d > 1000 {
			t.Errorf("%s: %d recorded nationally, want about %d", tc.name, recorded, tc.wantRecorded)
		}
		share := float64(activations) / float64(target)
		if share < tc.minShare || share > tc.maxShare {
			t.Errorf("%s: activations are %.3f of the targets, want %.2f..%.2f", tc.name, share, tc.minShare, tc.maxShare)
		}
	}
}
