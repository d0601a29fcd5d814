// Package demoyear seeds a development warehouse with a simulated registry
// year already under way, so that a demonstration (ikd-dev with its
// simulator) shows what an office head sees in a real year: targets of a
// plausible size for every city and province, and activations so far near the
// pace of the year, some regions ahead and some behind, rather than an empty
// year whose percentages swing wildly with the first events.
//
// Everything it writes is simulated and marked so: event ids and residents
// start with "demo-". Sizes follow the simulator's proxy for population, a
// city's number of districts (producers/simulate): the registry's 200 million
// recorded residents over the 7,285 districts, times Config.Scale.
package demoyear

import (
	"hash/fnv"
	"math"
	"time"

	"github.com/ikd-pipeline/ikd/internal/region"
)

// Config says how large the simulated year is.
type Config struct {
	// Scale is the share of the registry's size: 1 is the registry's 200
	// million recorded residents (minutes to seed), the default 0.02 seeds in
	// seconds. 0 seeds nothing.
	Scale float64 `envconfig:"SCALE" default:"0.02"`
}

const (
	// recordedPerDistrict: 200 million recorded residents over 7,285
	// districts. Kota Bengkulu's 9 districts give about 247,000, near the
	// 271,000 behind its 2023 target of 67,802.
	recordedPerDistrict = 27_454
	// targetPct is the registry's rule: 25 % of recorded residents.
	targetPct = 25
	// laggards is the share of cities far behind, as Kota Bandar Lampung
	// (11 % against 25 %) was in February 2023.
	laggards = 0.08
)

// City is the plan of one city's simulated year and the year before.
type City struct {
	Code, ProvinceCode, DistrictCode string
	Recorded                         uint64 // recorded before this year began
	RecordedLastYear                 uint64 // recorded before last year began
	Activations                      uint64 // this year up to yesterday
	ActivationsLastYear              uint64 // the whole of last year
}

// Target is 25 % of the residents recorded before the year began.
func Target(recorded uint64) uint64 { return uint64(math.Ceil(targetPct / 100.0 * float64(recorded))) }

// Plan lays out every city of ref for the year of today (WIB): its recorded
// residents at scale, and activations so far at the pace of the days gone
// by before today, times the city's own factor (see factor).
func Plan(ref *region.Reference, today time.Time, scale float64) []City {
	year := today.Year()
	gone := float64(today.YearDay()-1) / float64(time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC).YearDay())
	var out []City
	for _, c := range ref.Cities() {
		ds := ref.DistrictsOf(c.Code)
		if len(ds) == 0 {
			continue
		}
		recorded := uint64(math.Round(float64(len(ds)) * recordedPerDistrict * scale))
		// A year's new recordings, mostly residents turning 17: about 2.5 %.
		recordedLast := uint64(float64(recorded) / 1.025)
		out = append(out, City{
			Code: c.Code, ProvinceCode: c.ProvinceCode, DistrictCode: ds[0].Code,
			Recorded: recorded, RecordedLastYear: recordedLast,
			Activations:         uint64(math.Round(float64(Target(recorded)) * gone * factor(c.Code, year))),
			ActivationsLastYear: uint64(math.Round(float64(Target(recordedLast)) * factor(c.Code, year-1))),
		})
	}
	return out
}

// factor is how a city keeps pace in a year, the same for every run: most
// within 0.85 to 1.3 of the pace, a few laggards within 0.35 to 0.7.
func factor(city string, year int) float64 {
	h := fnv.New64a()
	h.Write([]byte(city))
	h.Write([]byte{byte(year), byte(year >> 8)})
	u := float64(h.Sum64()%1_000_000) / 1_000_000
	if u < laggards {
		return 0.35 + 0.35*u/laggards
	}
	return 0.85 + 0.45*(u-laggards)/(1-laggards)
}
