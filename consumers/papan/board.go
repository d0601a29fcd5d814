package papan

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// Region is one row of a board: a province of the nation or a city of a
// province, as the attainment views give it, with its alert state.
type Region struct {
	Code, Name     string
	Activated      uint64
	Enrolled       uint64
	Target         uint64
	AttainmentPct  float64
	ExpectedPct    float64
	BehindPace     bool
	LastActivation time.Time
	// Alert is the highest severity of its alerts firing as of the day
	// ("warning", "critical"), or "" when none fires.
	Alert string
}

// PaceDelta is how many points attainment stands above (positive) or below
// (negative) the pace of the year.
func (r Region) PaceDelta() float64 { return r.AttainmentPct - r.ExpectedPct }

// PaceGap is how many residents the region lacks to be on pace: the
// target's share of the year gone by, rounded up, less those activated;
// negative when it is ahead.
func (r Region) PaceGap() int64 { return PaceGap(r.Target, r.Activated, r.ExpectedPct) }

// PaceGap is the residents short of the pace expectedPct of target
// (negative: ahead of it).
func PaceGap(target, activated uint64, expectedPct float64) int64 {
	due := int64(math.Ceil(float64(target) * expectedPct / 100))
	return due - int64(activated)
}

// AttainmentPct is activated over target in percent, two decimals, as the
// views compute it (0 without a target).
func AttainmentPct(activated, target uint64) float64 {
	if target == 0 {
		return 0
	}
	return math.Round(100*float64(activated)/float64(target)*100) / 100
}

// Target is a row of ikd.targets.
type Target struct {
	Kind             string // "absolute" or "percent_of_recorded"
	Value            float64
	RecordedBaseline uint64
}

// RegionTarget is a region's target as the views compute it from its row
// of ikd.targets (nil: none, which means 25 % of recorded residents with a
// baseline of 0) and its residents enrolled in the year.
func RegionTarget(t *Target, enrolled uint64) uint64 {
	switch {
	case t == nil:
		return uint64(math.Ceil(25.0 / 100 * float64(enrolled)))
	case t.Kind == "absolute":
		return uint64(t.Value)
	default:
		return uint64(math.Ceil(t.Value / 100 * float64(t.RecordedBaseline+enrolled)))
	}
}

// NationalTarget is the nation's target: its own row of ikd.targets
// (the empty region_code) computed as a region's, or without one the sum of
// the provinces' targets.
func NationalTarget(t *Target, enrolled, provincesTarget uint64) uint64 {
	if t == nil {
		return provincesTarget
	}
	return RegionTarget(t, enrolled)
}

// Sum is a region made of parts (a province of its cities, the nation of its
// provinces: a resident's domicile is one city, so the sums are exact), with
// target as its own.
func Sum(code, name string, parts []Region, target func(enrolled uint64) uint64) Region {
	r := Region{Code: code, Name: name}
	for _, p := range parts {
		r.Activated += p.Activated
		r.Enrolled += p.Enrolled
		r.ExpectedPct = p.ExpectedPct
		if p.LastActivation.After(r.LastActivation) {
			r.LastActivation = p.LastActivation
		}
	}
	r.Target = target(r.Enrolled)
	r.AttainmentPct = AttainmentPct(r.Activated, r.Target)
	r.BehindPace = r.Target > 0 && r.AttainmentPct < r.ExpectedPct
	return r
}

// Sort keys of a board. The default puts the worst behind pace first.
const (
	SortPace       = "pace"
	SortName       = "name"
	SortActivated  = "activated"
	SortTarget     = "target"
	SortAttainment = "attainment"
	SortExpected   = "expected"
	SortGap        = "gap"
	SortAlert      = "alert"
)

var sortKeys = []string{SortPace, SortName, SortActivated, SortTarget, SortAttainment, SortExpected, SortGap, SortAlert}

// ParseSort reads the sort query value: a key, descending when prefixed
// with "-". Unknown or empty values give the default, pace ascending.
func ParseSort(s string) (key string, desc bool) {
	key, desc = strings.CutPrefix(s, "-")
	if !slices.Contains(sortKeys, key) {
		return SortPace, false
	}
	return key, desc
}

var severityRank = map[string]int{"": 0, "warning": 1, "critical": 2}

// SortRegions orders rs by key. Regions without a target come last under
// the pace and attainment keys, since their percentages say nothing; ties
// are broken by code so the order is stable across loads.
func SortRegions(rs []Region, key string, desc bool) {
	slices.SortStableFunc(rs, func(a, b Region) int {
		if key == SortPace || key == SortAttainment || key == SortGap {
			if c := cmp.Compare(boolRank(a.Target == 0), boolRank(b.Target == 0)); c != 0 {
				return c
			}
		}
		c := compareBy(a, b, key)
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func compareBy(a, b Region, key string) int {
	switch key {
	case SortName:
		return strings.Compare(a.Name, b.Name)
	case SortActivated:
		return cmp.Compare(a.Activated, b.Activated)
	case SortTarget:
		return cmp.Compare(a.Target, b.Target)
	case SortAttainment:
		return cmp.Compare(a.AttainmentPct, b.AttainmentPct)
	case SortExpected:
		return cmp.Compare(a.ExpectedPct, b.ExpectedPct)
	case SortGap:
		return cmp.Compare(a.PaceGap(), b.PaceGap())
	case SortAlert:
		return cmp.Compare(severityRank[a.Alert], severityRank[b.Alert])
	}
	return cmp.Compare(a.PaceDelta(), b.PaceDelta())
}

// NextSort is the sort value a column header links to: the column's key,
// reversed when the board is already sorted by it.
func NextSort(current, column string) string {
	key, desc := ParseSort(current)
	if key == column && !desc {
		return "-" + column
	}
	return column
}
