package papan

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Lang is the page's language: Bahasa Indonesia by default, English on
// request (?lang=en).
type Lang string

const (
	Indonesian Lang = "id"
	English    Lang = "en"
)

// ParseLang maps the lang query value to a language; anything but "en" is
// Indonesian, the page's own.
func ParseLang(s string) Lang {
	if s == string(English) {
		return English
	}
	return Indonesian
}

// separators returns the thousands and decimal separators: Indonesian writes
// 12.393 and 18,28; English 12,393 and 18.28.
func (l Lang) separators() (thousands, decimal string) {
	if l == English {
		return ",", "."
	}
	return ".", ","
}

// FormatInt writes n with thousands grouped: 12.393 (id), 12,393 (en).
func FormatInt(n int64, l Lang) string {
	thousands, _ := l.separators()
	sign := ""
	u := uint64(n)
	if n < 0 {
		sign, u = "-", uint64(-n)
	}
	return sign + group(strconv.FormatUint(u, 10), thousands)
}

func group(digits, sep string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	head := len(digits) % 3
	if head > 0 {
		b.WriteString(digits[:head])
	}
	for i := head; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// FormatDecimal writes x with two decimals and grouped thousands: 1.234,50
// (id), 1,234.50 (en).
func FormatDecimal(x float64, l Lang) string {
	thousands, decimal := l.separators()
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	s := strconv.FormatFloat(math.Abs(x), 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	sign := ""
	if x < 0 && s != "0.00" {
		sign = "-"
	}
	return sign + group(whole, thousands) + decimal + frac
}

// FormatPct writes a percentage as the registry does: 18,28 % (id),
// 18.28 % (en).
func FormatPct(x float64, l Lang) string { return FormatDecimal(x, l) + " %" }

var months = map[Lang][12]string{
	Indonesian: {"Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober", "November", "Desember"},
	English:    {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
}

// FormatDate writes a day: 13 Februari 2023 (id), 13 February 2023 (en).
func FormatDate(d time.Time, l Lang) string {
	return strconv.Itoa(d.Day()) + " " + months[l][d.Month()-1] + " " + strconv.Itoa(d.Year())
}

// FormatTime writes a moment in WIB: 13 Februari 2023 09.30 WIB (id, whose
// clock uses a dot), 13 February 2023 09:30 WIB (en).
func FormatTime(t time.Time, l Lang) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "–"
	}
	t = t.In(WIB)
	clock := t.Format("15:04")
	if l == Indonesian {
		clock = t.Format("15.04")
	}
	return FormatDate(t, l) + " " + clock + " WIB"
}

// WIB is the registry's clock (Asia/Jakarta, UTC+7 without daylight saving);
// years and days are counted in it.
var WIB = time.FixedZone("WIB", 7*3600)
