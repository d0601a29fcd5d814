package papan

import (
	"slices"
	"testing"
)

func TestPaceGapIsTheResidentsShortOfTheTargetsShareOfTheYear(t *testing.T) {
	for _, tc := range []struct {
		name        string
		target, act uint64
		expected    float64
		want        int64
	}{
		{"Kota Bengkulu on 13 February 2023", 67802, 12393, 11.78, 7988 - 12393},
		{"behind", 1000, 100, 50, 400},
		{"exactly on pace", 1000, 500, 50, 0},
		{"due rounds up to whole residents", 3, 0, 50, 2},
		{"ahead", 1000, 900, 50, -400},
		{"no target", 0, 10, 50, -10},
		{"past year", 1000, 800, 100, 200},
	} {
		if got := PaceGap(tc.target, tc.act, tc.expected); got != tc.want {
			t.Errorf("%s: PaceGap(%d, %d, %v) = %d, want %d", tc.name, tc.target, tc.act, tc.expected, got, tc.want)
		}
	}
}

func TestAttainmentIsActivatedOverTargetWithTwoDecimals(t *testing.T) {
	for _, tc := range []struct {
		act, target uint64
		want        float64
	}{
		{12393, 67802, 18.28},
		{0, 100, 0},
		{5, 0, 0},
		{3, 2, 150},
		{1, 3, 33.33},
		{2, 3, 66.67},
	} {
		if got := AttainmentPct(tc.act, tc.target); got != tc.want {
			t.Errorf("AttainmentPct(%d, %d) = %v, want %v", tc.act, tc.target, got, tc.want)
		}
	}
}

func TestTheNationalTargetIsItsOwnRowOrTheProvincesSum(t *testing.T) {
	for _, tc := range []struct {
		name                string
		row                 *Target
		enrolled, provinces uint64
		want                uint64
	}{
		{"no row: the provinces' sum", nil, 10, 4321, 4321},
		{"absolute", &Target{Kind: "absolute", Value: 50_000_000}, 10, 4321, 50_000_000},
		{"percent of recorded and enrolled, rounded up", &Target{Kind: "percent_of_recorded", Value: 25, RecordedBaseline: 1001}, 2, 9, 251},
		{"percent without baseline", &Target{Kind: "percent_of_recorded", Value: 25}, 0, 9, 0},
	} {
		if got := NationalTarget(tc.row, tc.enrolled, tc.provinces); got != tc.want {
			t.Errorf("%s: NationalTarget = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestARegionsTargetIsComputedAsTheViewsDo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		row      *Target
		enrolled uint64
		want     uint64
	}{
		{"no row: 25 % of the year's enrolments, baseline 0", nil, 10, 3},
		{"absolute", &Target{Kind: "absolute", Value: 67802}, 10, 67802},
		{"percent of recorded and enrolled, rounded up", &Target{Kind: "percent_of_recorded", Value: 25, RecordedBaseline: 767000}, 1, 191751},
	} {
		if got := RegionTarget(tc.row, tc.enrolled); got != tc.want {
			t.Errorf("%s: RegionTarget = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestARegionSumsItsPartsAgainstItsOwnTarget(t *testing.T) {
	parts := []Region{
		{Code: "17.71", Activated: 12393, Enrolled: 100, ExpectedPct: 11.78},
		{Code: "17.01", Activated: 607, Enrolled: 0, ExpectedPct: 11.78},
	}
	r := Sum("17", "Bengkulu", parts, func(enrolled uint64) uint64 { return 375000 + enrolled })
	want := Region{Code: "17", Name: "Bengkulu", Activated: 13000, Enrolled: 100, Target: 375100, AttainmentPct: 3.47, ExpectedPct: 11.78, BehindPace: true}
	if r != want {
		t.Errorf("Sum = %+v, want %+v", r, want)
	}
}

func TestAProvinceCountsItsCitiesWithAnAlertFiring(t *testing.T) {
	firing := map[string]string{"17": "critical", "17.71": "warning", "17.01": "critical", "18.71": "warning", "1": "warning"}
	for province, want := range map[string]int{"17": 2, "18": 1, "31": 0, "1": 0} {
		if got := CitiesFiring(firing, province); got != want {
			t.Errorf("CitiesFiring(%s) = %d, want %d", province, got, want)
		}
	}
}

func codes(rs []Region) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func TestBoardsSortWorstBehindPaceFirstUnlessAnotherColumnIsAsked(t *testing.T) {
	regions := []Region{
		{Code: "11", Name: "Aceh", Activated: 500, Target: 1000, AttainmentPct: 50, ExpectedPct: 50},
		{Code: "17", Name: "Bengkulu", Activated: 100, Target: 1000, AttainmentPct: 10, ExpectedPct: 50, BehindPace: true, Alert: "critical"},
		{Code: "18", Name: "Lampung", Activated: 400, Target: 2000, AttainmentPct: 20, ExpectedPct: 50, BehindPace: true, Alert: "warning"},
		{Code: "31", Name: "DKI Jakarta", Activated: 0, Target: 0, ExpectedPct: 50},
		{Code: "51", Name: "Bali", Activated: 900, Target: 1000, AttainmentPct: 90, ExpectedPct: 50},
	}
	for _, tc := range []struct {
		sort string
		want []string
	}{
		{"", []string{"17", "18", "11", "51", "31"}},
		{"pace", []string{"17", "18", "11", "51", "31"}},
		{"-pace", []string{"51", "11", "18", "17", "31"}},
		{"nonsense", []string{"17", "18", "11", "51", "31"}},
		{"name", []string{"11", "51", "17", "31", "18"}},
		{"-activated", []string{"51", "11", "18", "17", "31"}},
		{"target", []string{"31", "11", "17", "51", "18"}},
		{"attainment", []string{"17", "18", "11", "51", "31"}},
		{"-gap", []string{"18", "17", "11", "51", "31"}},
		{"-alert", []string{"17", "18", "11", "31", "51"}},
		{"expected", []string{"11", "17", "18", "31", "51"}},
	} {
		rs := slices.Clone(regions)
		key, desc := ParseSort(tc.sort)
		SortRegions(rs, key, desc)
		if got := codes(rs); !slices.Equal(got, tc.want) {
			t.Errorf("sort %q: %v, want %v", tc.sort, got, tc.want)
		}
	}
}

func TestAColumnHeaderReversesTheSortItAlreadyHas(t *testing.T) {
	for _, tc := range []struct{ current, column, want string }{
		{"", "pace", "-pace"},
		{"", "name", "name"},
		{"name", "name", "-name"},
		{"-name", "name", "name"},
		{"-name", "target", "target"},
	} {
		if got := NextSort(tc.current, tc.column); got != tc.want {
			t.Errorf("NextSort(%q, %q) = %q, want %q", tc.current, tc.column, got, tc.want)
		}
	}
}
