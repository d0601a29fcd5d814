// Package nik reads the Nomor Induk Kependudukan, Indonesia's 16-digit resident
// number, and turns it into pseudonyms so that analytics never need it in clear.
//
// A NIK is personal data (UU 27/2022): nothing in this package puts one, or its
// birth date or serial, into an error message. The region part is not personal
// and may appear.
package nik

import (
	"fmt"
	"time"

	"github.com/ikd-pipeline/ikd/internal/region"
)

// length is the number of digits of a NIK.
const length = 16

// femaleDayOffset is what the NIK adds to a woman's day of birth.
const femaleDayOffset = 40

// NIK is what a valid NIK says about its holder.
type NIK struct {
	ProvinceCode string    // "17"
	CityCode     string    // "17.71"
	DistrictCode string    // "17.71.01"
	BirthDate    time.Time // UTC midnight
	Female       bool
}

// Reason says in a word why a NIK is invalid.
type Reason string

// The reasons Parse gives.
const (
	ReasonLength        Reason = "length"         // not 16 bytes long
	ReasonNotDigits     Reason = "not_digits"     // holds something other than ASCII digits
	ReasonUnknownRegion Reason = "unknown_region" // the region part is not in the reference
	ReasonBirthDate     Reason = "birth_date"     // the date part is not a real date
	ReasonSerial        Reason = "serial"         // the serial is 0000, which is never issued
)

// Error is why Parse rejected a NIK. Detail never holds the NIK, its birth date
// or its serial.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "nik: " + string(e.Reason)
	}
	return "nik: " + e.Detail
}

// Parse checks s against the reference and reads its parts. now decides the
// century of the two-digit birth year.
func Parse(s string, ref *region.Reference, now time.Time) (NIK, error) {
	if len(s) != length {
		return NIK{}, &Error{ReasonLength, fmt.Sprintf("%d characters, want %d digits", len(s), length)}
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return NIK{}, &Error{ReasonNotDigits, fmt.Sprintf("not a digit at position %d", i+1)}
		}
	}
	n := NIK{ProvinceCode: s[0:2]}
	n.CityCode = n.ProvinceCode + "." + s[2:4]
	n.DistrictCode = n.CityCode + "." + s[4:6]
	if err := checkRegion(ref, n); err != nil {
		return NIK{}, err
	}
	var err error
	if n.BirthDate, n.Female, err = birthDate(s[6:12], now); err != nil {
		return NIK{}, err
	}
	if s[12:] == "0000" {
		return NIK{}, &Error{ReasonSerial, "serial 0000 is never issued"}
	}
	return n, nil
}

// checkRegion names the first level that is missing, so that an operator can
// tell a typo from a reference that is out of date.
func checkRegion(ref *region.Reference, n NIK) error {
	missing := ""
	if _, ok := ref.Province(n.ProvinceCode); !ok {
		missing = "province " + n.ProvinceCode
	} else if _, ok := ref.City(n.CityCode); !ok {
		missing = "city " + n.CityCode
	} else if _, ok := ref.District(n.DistrictCode); !ok {
		missing = "district " + n.DistrictCode
	}
	if missing == "" {
		return nil
	}
	return &Error{ReasonUnknownRegion, fmt.Sprintf("unknown region %s: no %s", n.DistrictCode, missing)}
}

// birthDate reads ddmmyy, where women's days have 40 added.
//
// The NIK keeps only two digits of the year, so the century is the latest one
// that does not put the birth after now's calendar date (in now's location):
// 20yy when that date is not after today, 19yy otherwise. Whether 29 February
// exists is decided in the century chosen, so 290200 is valid as 2000 but not
// as 1900.
func birthDate(ddmmyy string, now time.Time) (time.Time, bool, error) {
	day, month, yy := twoDigits(ddmmyy[0:2]), twoDigits(ddmmyy[2:4]), twoDigits(ddmmyy[4:6])
	female := day > femaleDayOffset
	if female {
		day -= femaleDayOffset
	}
	if month < 1 || month > 12 {
		return time.Time{}, false, &Error{ReasonBirthDate, "birth month out of range"}
	}
	if day < 1 || day > 31 {
		return time.Time{}, false, &Error{ReasonBirthDate, "birth day out of range"}
	}
	year := 2000 + yy
	ny, nm, nd := now.Date()
	if year > ny || year == ny && (month > int(nm) || month == int(nm) && day > nd) {
		year -= 100
	}
	if day > daysIn(time.Month(month), year) {
		return time.Time{}, false, &Error{ReasonBirthDate, "birth day does not exist in its month and year"}
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), female, nil
}

func daysIn(m time.Month, year int) int {
	// Day 0 of the next month is the last day of this one.
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// twoDigits reads two ASCII digits that Parse has already checked.
func twoDigits(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

// Format builds a NIK string, for the simulator and tests. The codes are given
// as in NIK ("17", "17.71", "17.71.01") and only their last two digits are
// used; the year keeps its last two digits and the serial its last four.
// Format does not check its inputs: a serial outside 1..9999 or codes outside
// the reference give a string that Parse rejects.
func Format(province, city, district string, birth time.Time, female bool, serial int) string {
	y, m, d := birth.Date()
	if female {
		d += femaleDayOffset
	}
	return fmt.Sprintf("%s%s%s%02d%02d%02d%04d",
		lastTwo(province), lastTwo(city), lastTwo(district), d, int(m), y%100, serial%10000)
}

func lastTwo(code string) string { return code[max(0, len(code)-2):] }
