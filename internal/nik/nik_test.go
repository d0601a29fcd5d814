package nik

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/region"
)

func reference(t testing.TB) *region.Reference {
	t.Helper()
	ref, err := region.Load()
	if err != nil {
		t.Fatalf("region.Load: %v", err)
	}
	return ref
}

// now is when the reports of February 2023 were written.
var now = time.Date(2023, 2, 13, 9, 30, 0, 0, time.FixedZone("WIB", 7*3600))

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParseAcceptsValidNIKs(t *testing.T) {
	ref := reference(t)
	tests := []struct {
		name string
		nik  string
		now  time.Time
		want NIK
	}{
		{"man born in 1990", "1771011501900001", now,
			NIK{"17", "17.71", "17.71.01", date(1990, 1, 15), false}},
		{"woman has 40 added to her day", "1771015501900001", now,
			NIK{"17", "17.71", "17.71.01", date(1990, 1, 15), true}},
		{"woman born on the 31st has day 71", "1871017112850123", now,
			NIK{"18", "18.71", "18.71.01", date(1985, 12, 31), true}},
		{"birthday earlier this year is this century", "1771010101230001", now,
			NIK{"17", "17.71", "17.71.01", date(2023, 1, 1), false}},
		{"birth today is this century", "1771011302230001", now,
			NIK{"17", "17.71", "17.71.01", date(2023, 2, 13), false}},
		{"birthday tomorrow is last century", "1771011402230001", now,
			NIK{"17", "17.71", "17.71.01", date(1923, 2, 14), false}},
		{"29 February 2000 is a leap day", "1771012902000001", now,
			NIK{"17", "17.71", "17.71.01", date(2000, 2, 29), false}},
		{"29 February 2004 of a woman", "1771016902040001", now,
			NIK{"17", "17.71", "17.71.01", date(2004, 2, 29), true}},
		{"29 February 1924 when 2024 is still ahead", "1771012902240001", now,
			NIK{"17", "17.71", "17.71.01", date(1924, 2, 29), false}},
		{"now's own calendar date decides, not UTC's", "1771011302230001",
			time.Date(2023, 2, 13, 0, 30, 0, 0, time.FixedZone("WIB", 7*3600)),
			NIK{"17", "17.71", "17.71.01", date(2023, 2, 13), false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.nik, ref, tt.now)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRejectsInvalidNIKs(t *testing.T) {
	ref := reference(t)
	tests := []struct {
		name   string
		nik    string
		now    time.Time
		reason Reason
		detail string
	}{
		{"empty", "", now, ReasonLength, "0 characters, want 16 digits"},
		{"15 digits", "177101150190001", now, ReasonLength, "15 characters, want 16 digits"},
		{"17 digits", "17710115019000011", now, ReasonLength, "17 characters, want 16 digits"},
		{"non-ASCII digits are longer", "１７７１０１１５０１９０", now, ReasonLength, "36 characters, want 16 digits"},
		{"a letter", "17710115019000a1", now, ReasonNotDigits, "not a digit at position 15"},
		{"a leading space", " 771011501900001", now, ReasonNotDigits, "not a digit at position 1"},
		{"dotted region", "17.71.0115019001", now, ReasonNotDigits, "not a digit at position 3"},
		{"unknown province", "9971011501900001", now, ReasonUnknownRegion, "unknown region 99.71.01: no province 99"},
		{"unknown city", "1799011501900001", now, ReasonUnknownRegion, "unknown region 17.99.01: no city 17.99"},
		{"unknown district", "1771991501900001", now, ReasonUnknownRegion, "unknown region 17.71.99: no district 17.71.99"},
		{"region is checked before the date", "9971010000000000", now, ReasonUnknownRegion, "unknown region 99.71.01: no province 99"},
		{"day 00", "1771010001900001", now, ReasonBirthDate, "birth day out of range"},
		{"day 32", "1771013201900001", now, ReasonBirthDate, "birth day out of range"},
		{"day 40 is neither a man's nor a woman's", "1771014001900001", now, ReasonBirthDate, "birth day out of range"},
		{"day 72", "1771017201900001", now, ReasonBirthDate, "birth day out of range"},
		{"month 00", "1771011500900001", now, ReasonBirthDate, "birth month out of range"},
		{"month 13", "1771011513900001", now, ReasonBirthDate, "birth month out of range"},
		{"31 April", "1771013104900001", now, ReasonBirthDate, "birth day does not exist in its month and year"},
		{"31 April of a woman", "1771017104900001", now, ReasonBirthDate, "birth day does not exist in its month and year"},
		{"29 February 2001", "1771012902010001", now, ReasonBirthDate, "birth day does not exist in its month and year"},
		{"29 February 1900 when 2000 is still ahead", "1771012902000001", date(2000, 2, 28), ReasonBirthDate,
			"birth day does not exist in its month and year"},
		{"serial 0000", "1771011501900000", now, ReasonSerial, "serial 0000 is never issued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.nik, ref, tt.now)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error = %v, want a *Error", err)
			}
			if e.Reason != tt.reason || e.Detail != tt.detail {
				t.Errorf("Parse error = %q %q, want %q %q", e.Reason, e.Detail, tt.reason, tt.detail)
			}
			if tt.nik != "" && strings.Contains(err.Error(), tt.nik) {
				t.Errorf("error %q holds the NIK", err)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"detail", &Error{ReasonUnknownRegion, "unknown region 99.01.01: no province 99"}, "nik: unknown region 99.01.01: no province 99"},
		{"reason when no detail", &Error{Reason: ReasonSerial}, "nik: serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatRoundTripsThroughParse(t *testing.T) {
	ref := reference(t)
	tests := []struct {
		name   string
		want   NIK
		serial int
	}{
		{"man in Kota Bengkulu", NIK{"17", "17.71", "17.71.01", date(1990, 1, 15), false}, 1},
		{"woman in Kota Bandar Lampung", NIK{"18", "18.71", "18.71.02", date(1985, 12, 31), true}, 9999},
		{"leap-day girl in Jakarta", NIK{"31", "31.71", "31.71.01", date(2004, 2, 29), true}, 42},
		{"born last century", NIK{"11", "11.01", "11.01.01", date(1930, 7, 1), false}, 123},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Format(tt.want.ProvinceCode, tt.want.CityCode, tt.want.DistrictCode, tt.want.BirthDate, tt.want.Female, tt.serial)
			got, err := Parse(s, ref, now)
			if err != nil {
				t.Fatalf("Parse(Format(...)): %v", err)
			}
			if got != tt.want {
				t.Errorf("Parse(Format(...)) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFormatLayout(t *testing.T) {
	got := Format("17", "17.71", "17.71.01", date(1990, 1, 1), true, 1)
	if want := "1771014101900001"; got != want {
		t.Errorf("Format = %s, want %s", got, want)
	}
}

func TestFormatOfEveryDistrictParses(t *testing.T) {
	ref := reference(t)
	for i, d := range ref.Districts() {
		c, _ := ref.City(d.CityCode)
		s := Format(c.ProvinceCode, c.Code, d.Code, date(1970+i%50, time.Month(1+i%12), 1+i%28), i%2 == 0, 1+i)
		n, err := Parse(s, ref, now)
		if err != nil || n.DistrictCode != d.Code {
			t.Fatalf("Parse(Format(%s)) = %+v, %v", d.Code, n, err)
		}
	}
}
