package events

import (
	"regexp"

	"github.com/ikd-pipeline/ikd/internal/nik"
)

// residentMember finds a resident pseudonym in a message as sent: its hex is
// a keyed sum, which holds 16 decimal digits in a row about once in a hundred
// residents, and is not a NIK.
var residentMember = regexp.MustCompile(`"resident"[ \t\r\n]*:[ \t\r\n]*"([0-9a-f]{32})"`)

// Redact returns a message, any message, with every run that could be a NIK
// replaced by nik.Redacted, and how many it replaced, so that a message kept
// for people to look at (a dead letter) never keeps a NIK. A well-formed
// resident pseudonym is left as it is, so that a valid event is returned
// unchanged and can still be replayed. data is not changed.
func Redact(data []byte) ([]byte, int) {
	runs := nik.Runs(data)
	if len(runs) == 0 {
		return data, 0
	}
	pseudonyms := residentMember.FindAllSubmatchIndex(data, -1)
	kept := runs[:0:0]
	for _, r := range runs {
		if !inside(r, pseudonyms) {
			kept = append(kept, r)
		}
	}
	return nik.RedactRuns(data, kept)
}

// inside reports whether r lies within the first group of one of matches.
func inside(r nik.Run, matches [][]int) bool {
	for _, m := range matches {
		if r.Start >= m[2] && r.End <= m[3] {
			return true
		}
	}
	return false
}
