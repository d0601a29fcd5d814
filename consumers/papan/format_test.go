package papan

import (
	"math"
	"testing"
	"time"
)

func TestNumbersAreWrittenIndonesianStyleUnlessEnglishIsAsked(t *testing.T) {
	for _, tc := range []struct {
		n      int64
		id, en string
	}{
		{0, "0", "0"},
		{7, "7", "7"},
		{999, "999", "999"},
		{1000, "1.000", "1,000"},
		{12393, "12.393", "12,393"},
		{67802, "67.802", "67,802"},
		{375000, "375.000", "375,000"},
		{50000000, "50.000.000", "50,000,000"},
		{-1234567, "-1.234.567", "-1,234,567"},
	} {
		if got := FormatInt(tc.n, Indonesian); got != tc.id {
			t.Errorf("FormatInt(%d, id) = %q, want %q", tc.n, got, tc.id)
		}
		if got := FormatInt(tc.n, English); got != tc.en {
			t.Errorf("FormatInt(%d, en) = %q, want %q", tc.n, got, tc.en)
		}
	}
}

func TestPercentagesHaveTwoDecimalsAndTheLanguagesDecimalSign(t *testing.T) {
	for _, tc := range []struct {
		x      float64
		id, en string
	}{
		{18.28, "18,28 %", "18.28 %"},
		{0, "0,00 %", "0.00 %"},
		{100, "100,00 %", "100.00 %"},
		{3.3, "3,30 %", "3.30 %"},
		{1234.5, "1.234,50 %", "1,234.50 %"},
		{-8.75, "-8,75 %", "-8.75 %"},
		{-0.001, "0,00 %", "0.00 %"},
		{math.NaN(), "– %", "– %"},
	} {
		if got := FormatPct(tc.x, Indonesian); got != tc.id {
			t.Errorf("FormatPct(%v, id) = %q, want %q", tc.x, got, tc.id)
		}
		if got := FormatPct(tc.x, English); got != tc.en {
			t.Errorf("FormatPct(%v, en) = %q, want %q", tc.x, got, tc.en)
		}
	}
}

func TestDatesAndTimesNameTheMonthInTheLanguageAndTellWIB(t *testing.T) {
	day := time.Date(2023, 2, 13, 0, 0, 0, 0, WIB)
	at := time.Date(2023, 2, 13, 2, 30, 0, 0, time.UTC) // 09.30 WIB
	for _, tc := range []struct {
		got, want string
	}{
		{FormatDate(day, Indonesian), "13 Februari 2023"},
		{FormatDate(day, English), "13 February 2023"},
		{FormatTime(at, Indonesian), "13 Februari 2023 09.30 WIB"},
		{FormatTime(at, English), "13 February 2023 09:30 WIB"},
		{FormatTime(time.Time{}, Indonesian), "–"},
		{FormatTime(time.Unix(0, 0), English), "–"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestOnlyEnglishIsAskedForAnythingElseIsIndonesian(t *testing.T) {
	for in, want := range map[string]Lang{"en": English, "id": Indonesian, "": Indonesian, "fr": Indonesian, "EN": Indonesian} {
		if got := ParseLang(in); got != want {
			t.Errorf("ParseLang(%q) = %q, want %q", in, got, want)
		}
	}
}
