package events

import (
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/nik"
)

func TestRedactKeepsNoNIKInAnyFieldButLeavesPseudonyms(t *testing.T) {
	const r = nik.Redacted
	const digitsPseudonym = "00000000000000000000000000000042" // a valid pseudonym, all digits but two
	tests := []struct{ name, in, want string }{
		{"a counter line published by mistake",
			`{"type":"activation","nik":"1771014101900001","office_id":"3171-DKI-01"}`,
			`{"type":"activation","nik":"` + r + `","office_id":"3171-DKI-01"}`},
		{"a NIK as a key",
			`{"1771014101900001":true}`, `{"` + r + `":true}`},
		{"a NIK with separators in office_id",
			`{"office_id":"BKL 1771.0141.0190.0001"}`, `{"office_id":"BKL ` + r + `"}`},
		{"an escaped NIK in event_id",
			`{"event_id":"\u00317710141019000\u00301"}`, `{"event_id":"` + r + `"}`},
		{"malformed JSON",
			`{"nik": 1771014101900001,,`, `{"nik": ` + r + `,,`},
		{"a pseudonym of digits stays",
			`{"resident":"` + digitsPseudonym + `"}`, `{"resident":"` + digitsPseudonym + `"}`},
		{"a pseudonym with spaces around the colon stays",
			`{"resident" : "` + digitsPseudonym + `"}`, `{"resident" : "` + digitsPseudonym + `"}`},
		{"a NIK in the resident field does not",
			`{"resident":"1771014101900001"}`, `{"resident":"` + r + `"}`},
		{"a pseudonym under another name does not",
			`{"note":"` + digitsPseudonym + `"}`, `{"note":"` + r + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := Redact([]byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("Redact(%s) =\n%s, want\n%s", tt.in, got, tt.want)
			}
			if (n > 0) != (tt.in != tt.want) {
				t.Errorf("counted %d runs", n)
			}
		})
	}
}

func TestRedactLeavesAValidEventAsItIs(t *testing.T) {
	e, err := builder(t).Build([]byte(exampleLine))
	if err != nil {
		t.Fatal(err)
	}
	e.Resident = "17710141019000011771014101900001" // hex as far as the contract can tell
	data, _ := e.Marshal()
	if got, n := Redact(data); n != 0 || string(got) != string(data) {
		t.Errorf("Redact changed a valid event:\n%s\n%s", data, got)
	}
}

func TestFieldsRefuseDigitRunsThatCouldBeANIK(t *testing.T) {
	b, v := builder(t), validator(t)
	tests := []struct{ field, value string }{
		{"office_id", "1771014101900001"},
		{"office_id", "BKL-1771 0141 0190 0001"},
		{"event_id", "bdl:1771-0141-0190-0001"},
		{"event_id", "x1871011512050001"},
		{"occurred_at", "2023-02-13T09:30:00.1771014101900001+07:00"},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.value, func(t *testing.T) {
			_, err := b.Build([]byte(with(tt.field, `"`+tt.value+`"`)))
			if !isInvalid(err, tt.field) {
				t.Errorf("Build: %v, want invalid_field in %s", err, tt.field)
			}
			_, err = v.Decode([]byte(set(tt.field, `"`+tt.value+`"`)))
			if !isInvalid(err, tt.field) {
				t.Errorf("Decode: %v, want invalid_field in %s", err, tt.field)
			}
			if strings.Contains(err.Error(), tt.value) {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

func isInvalid(err error, field string) bool {
	e, ok := err.(*Error)
	return ok && e.Reason == ReasonInvalidField && e.Field == field && strings.Contains(e.Detail, "could be a NIK")
}

func TestDerivedEventIDsNeverLookLikeANIK(t *testing.T) {
	b, v := builder(t), validator(t)
	// 1,000 lines give about ten sums whose hex holds 16 digits in a row.
	for serial := 1; serial <= 1000; serial++ {
		line := strings.Replace(exampleLine, "1771014101900001", nik.Format("17", "17.71", "17.71.01", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), true, serial), 1)
		e, err := b.Build([]byte(line))
		if err != nil {
			t.Fatalf("serial %d: %v", serial, err)
		}
		if nik.HasRun(e.EventID) {
			t.Fatalf("serial %d: derived id %s could be a NIK", serial, e.EventID)
		}
		again, _ := b.Build([]byte(line))
		if again.EventID != e.EventID {
			t.Fatalf("serial %d: the same line gave ids %s and %s", serial, e.EventID, again.EventID)
		}
		data, _ := e.Marshal()
		if _, err := v.Decode(data); err != nil {
			t.Fatalf("serial %d: %v", serial, err)
		}
	}
}
