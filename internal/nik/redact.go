package nik

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces a NIK-like run in text that must not keep it. It is a
// valid NATS subject token and JSON string content, and holds no digit.
const Redacted = "NIK-REDACTED"

// runDigits is how many digits make a run that could be a NIK.
const runDigits = length

// maxGap is how many separators may stand between two digits of one run:
// "1771 01 410190 0001" and "1771 - 0141 - ..." are NIKs to a reader.
const maxGap = 3

// Run is a NIK-like run in a text: [Start, End) in bytes, from its first
// digit to the end of its last.
type Run struct{ Start, End int }

// Runs finds every run of at least 16 digits in text, where two digits may be
// apart by up to three separators (space, '.', '-', '_', '/', or any Unicode
// space or dash). A digit is any Unicode decimal digit, and both digits and
// separators are also recognised as JSON escapes (\u0031), so that neither
// full-width digits nor escaping hides a NIK.
func Runs(text []byte) []Run {
	var runs []Run
	digits, gap, start, end := 0, 0, 0, 0
	flush := func() {
		if digits >= runDigits {
			runs = append(runs, Run{start, end})
		}
		digits, gap = 0, 0
	}
	for i := 0; i < len(text); {
		kind, width := token(text[i:])
		switch {
		case kind == digit:
			if digits == 0 {
				start = i
			}
			digits, gap, end = digits+1, 0, i+width
		case kind == separator && digits > 0 && gap < maxGap:
			gap++
		default:
			flush()
		}
		i += width
	}
	flush()
	return runs
}

// Redact returns text with every run of Runs replaced by Redacted, and how
// many there were; text itself is not changed.
func Redact(text []byte) ([]byte, int) {
	return RedactRuns(text, Runs(text))
}

// RedactRuns replaces runs, which must be in order and apart, by Redacted.
func RedactRuns(text []byte, runs []Run) ([]byte, int) {
	if len(runs) == 0 {
		return text, 0
	}
	out := make([]byte, 0, len(text))
	last := 0
	for _, r := range runs {
		out = append(out, text[last:r.Start]...)
		out = append(out, Redacted...)
		last = r.End
	}
	return append(out, text[last:]...), len(runs)
}

// RedactString is Redact for strings such as log fields and error texts.
func RedactString(s string) string {
	out, n := Redact([]byte(s))
	if n == 0 {
		return s
	}
	return string(out)
}

// HasRun reports whether s holds a run that could be a NIK.
func HasRun(s string) bool { return len(Runs([]byte(s))) > 0 }

type kind int

const (
	other kind = iota
	digit
	separator
)

// token classifies the character at the start of b and returns its width.
func token(b []byte) (kind, int) {
	switch c := b[0]; {
	case c >= '0' && c <= '9':
		return digit, 1
	case c == '\\':
		return escape(b)
	case c < utf8.RuneSelf:
		return classify(rune(c)), 1
	}
	r, width := utf8.DecodeRune(b)
	return classify(r), width
}

// escape reads a JSON escape: \uXXXX as the character it stands for, \/ as
// '/', any other as something else.
func escape(b []byte) (kind, int) {
	if len(b) >= 2 && b[1] == '/' {
		return separator, 2
	}
	if len(b) >= 6 && b[1] == 'u' {
		if r, err := strconv.ParseUint(string(b[2:6]), 16, 16); err == nil {
			return classify(rune(r)), 6
		}
	}
	return other, 1
}

func classify(r rune) kind {
	switch {
	case unicode.IsDigit(r):
		return digit
	case r == '.' || r == '-' || r == '_' || r == '/' || unicode.IsSpace(r) || unicode.Is(unicode.Pd, r):
		return separator
	}
	return other
}
