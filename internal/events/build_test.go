package events

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/nik"
)

// exampleLine is an activation in Jakarta (31) of a woman who lives in Kota
// Bengkulu (17.71).
const exampleLine = `{"type":"activation","nik":"1771014101900001","office_id":"3171-DKI-01","occurred_at":"2023-02-13T09:30:00+07:00","channel":"counter"}`

func TestBuildCountsAnAwayFromHomeActivationAtTheDomicile(t *testing.T) {
	got, err := builder(t).Build([]byte(exampleLine))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	want := Event{
		V:            1,
		EventID:      "2043a6c4456d62986d677c65d36e3373", // Sum("v1", type, nik, office_id, occurred_at, channel)
		Type:         TypeActivation,
		Resident:     "a56d4d1ebd5fc6e37e5a80aca72347eb",
		KeyID:        "d30034884a76", // nik.KeyID of the development key
		ProvinceCode: "17",
		CityCode:     "17.71",
		DistrictCode: "17.71.01",
		OfficeID:     "3171-DKI-01",
		Channel:      ChannelCounter,
		OccurredAt:   time.Date(2023, 2, 13, 2, 30, 0, 0, time.UTC),
	}
	if got != want {
		t.Errorf("Build =\n%+v, want\n%+v", got, want)
	}
	if got.Subject() != "ikd.v1.activation.17.71" {
		t.Errorf("Subject() = %s", got.Subject())
	}
}

func TestBuildDefaults(t *testing.T) {
	b := builder(t)
	e, err := b.Build([]byte(`{"type":"enrolment","nik":"1871011512050001","office_id":"1871-BDL-02"}`))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if e.Channel != ChannelCounter {
		t.Errorf("channel = %q, want counter", e.Channel)
	}
	if !e.OccurredAt.Equal(now) || e.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at = %v, want now in UTC", e.OccurredAt)
	}
}

func TestBuildKeepsAGivenEventID(t *testing.T) {
	line := `{"event_id":"bdl-02:2023-02-13:0042","type":"activation","nik":"1771011501900001","office_id":"1771-BKL-01"}`
	e, err := builder(t).Build([]byte(line))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if e.EventID != "bdl-02:2023-02-13:0042" {
		t.Errorf("event_id = %q", e.EventID)
	}
}

func TestBuildDerivesStableEventIDs(t *testing.T) {
	id := func(t *testing.T, b *Builder, line string) string {
		t.Helper()
		e, err := b.Build([]byte(line))
		if err != nil {
			t.Fatalf("Build(%s): %v", line, err)
		}
		return e.EventID
	}
	const noTime = `{"type":"activation","nik":"1771014101900001","office_id":"3171-DKI-01"}`
	later := builder(t)
	later.Now = func() time.Time { return now.Add(time.Hour) }
	otherKey := builder(t)
	otherKey.Pseudonyms, _ = nik.NewPseudonymizer([]byte("another-key-of-16-bytes-or-more"))

	tests := []struct {
		name   string
		a, b   string
		bb     *Builder
		sameID bool
	}{
		{"same line twice", exampleLine, exampleLine, builder(t), true},
		{"same line without occurred_at at another time", noTime, noTime, later, true},
		{"field order and spacing do not matter",
			exampleLine,
			`{ "channel": "counter", "occurred_at": "2023-02-13T09:30:00+07:00", "office_id": "3171-DKI-01", "nik": "1771014101900001", "type": "activation" }`,
			builder(t), true},
		{"absent channel is the counter channel", noTime, strings.Replace(noTime, `}`, `,"channel":"counter"}`, 1), builder(t), true},
		{"different channel", exampleLine, strings.Replace(exampleLine, `"counter"`, `"outreach"`, 1), builder(t), false},
		{"different type", exampleLine, strings.Replace(exampleLine, `"activation"`, `"enrolment"`, 1), builder(t), false},
		{"different office", exampleLine, strings.Replace(exampleLine, `3171-DKI-01`, `3171-DKI-02`, 1), builder(t), false},
		{"different resident", exampleLine, strings.Replace(exampleLine, `900001`, `900002`, 1), builder(t), false},
		{"same instant written with another offset", exampleLine,
			strings.Replace(exampleLine, `2023-02-13T09:30:00+07:00`, `2023-02-13T02:30:00Z`, 1), builder(t), false},
		{"given versus absent occurred_at", exampleLine, noTime, builder(t), false},
		{"another key", exampleLine, exampleLine, otherKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := id(t, builder(t), tt.a), id(t, tt.bb, tt.b)
			if (a == b) != tt.sameID {
				t.Errorf("ids %s and %s, want same %v", a, b, tt.sameID)
			}
		})
	}
}

func TestBuildAcceptsOccurredAtWithinTheTolerance(t *testing.T) {
	line := strings.Replace(exampleLine, `2023-02-13T09:30:00+07:00`, `2023-02-13T10:04:59.5+07:00`, 1)
	if _, err := builder(t).Build([]byte(line)); err != nil {
		t.Errorf("Build: %v", err)
	}
}

// with returns the example line with one field set to a raw JSON value, or
// removed when raw is empty.
func with(field, raw string) string {
	fields := map[string]string{
		"type":        `"activation"`,
		"nik":         `"1771014101900001"`,
		"office_id":   `"3171-DKI-01"`,
		"occurred_at": `"2023-02-13T09:30:00+07:00"`,
		"channel":     `"counter"`,
	}
	fields[field] = raw
	var members []string
	for _, f := range append(slices.Clone(inputFields), "extra") {
		if v := fields[f]; v != "" {
			members = append(members, `"`+f+`":`+v)
		}
	}
	return "{" + strings.Join(members, ",") + "}"
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		reason Reason
		field  string
		detail string
	}{
		{"oversized", exampleLine + strings.Repeat(" ", MaxMessageBytes), ReasonOversized, "", ""},
		{"empty line", ``, ReasonMalformedJSON, "", "unexpected end of input"},
		{"not JSON", `type=activation`, ReasonMalformedJSON, "", "syntax error at byte 2"},
		{"cut short", exampleLine[:40], ReasonMalformedJSON, "", "unexpected end of input"},
		{"an array", `[` + exampleLine + `]`, ReasonMalformedJSON, "", "not a JSON object"},
		{"null", `null`, ReasonMalformedJSON, "", "not a JSON object"},
		{"trailing data", exampleLine + `{}`, ReasonMalformedJSON, "", "data after the object"},
		{"two lines in one", exampleLine + "\n" + exampleLine, ReasonMalformedJSON, "", "data after the object"},
		{"not UTF-8", strings.Replace(exampleLine, "DKI", "DK\xff", 1), ReasonMalformedJSON, "", "not UTF-8"},
		{"repeated key", strings.Replace(exampleLine, `{`, `{"type":"enrolment",`, 1), ReasonMalformedJSON, "type", "key appears twice"},
		{"unknown field", with("extra", `1`), ReasonUnknownField, "extra", ""},
		{"field names are case-sensitive", strings.Replace(exampleLine, `"nik"`, `"NIK"`, 1), ReasonUnknownField, "NIK", ""},
		{"an unknown field name with digits is not shown", strings.Replace(exampleLine, `{`, `{"1771014101900001":1,`, 1), ReasonUnknownField, "", "a field whose name is not shown"},
		{"missing type", with("type", ""), ReasonMissingField, "type", ""},
		{"missing nik", with("nik", ""), ReasonMissingField, "nik", ""},
		{"missing office_id", with("office_id", ""), ReasonMissingField, "office_id", ""},
		{"unknown type", with("type", `"registration"`), ReasonUnknownType, "type", `want one of ["enrolment" "activation"]`},
		{"types are case-sensitive", with("type", `"Activation"`), ReasonUnknownType, "type", ""},
		{"type is not a string", with("type", `1`), ReasonInvalidField, "type", "not a JSON string"},
		{"nik is a number", with("nik", `1771014101900001`), ReasonInvalidField, "nik", "not a JSON string"},
		{"nik is null", with("nik", `null`), ReasonInvalidField, "nik", "not a JSON string"},
		{"nik too short", with("nik", `"177101410190001"`), ReasonInvalidNIK, "nik", "length"},
		{"nik with a letter", with("nik", `"17710141019000O1"`), ReasonInvalidNIK, "nik", "not_digits"},
		{"nik of an unknown region", with("nik", `"9971014101900001"`), ReasonUnknownRegion, "nik", "unknown_region"},
		{"nik with an impossible birth date", with("nik", `"1771013102900001"`), ReasonInvalidNIK, "nik", "birth_date"},
		{"nik with serial 0000", with("nik", `"1771014101900000"`), ReasonInvalidNIK, "nik", "serial"},
		{"empty office_id", with("office_id", `""`), ReasonInvalidField, "office_id", ""},
		{"office_id of 65 characters", with("office_id", `"`+strings.Repeat("a", 65)+`"`), ReasonInvalidField, "office_id", ""},
		{"office_id beyond ASCII", with("office_id", `"Kantor Dukcapil Kota Bengkulu é"`), ReasonInvalidField, "office_id", ""},
		{"office_id with a zero-width space", with("office_id", `"3171\u200bDKI"`), ReasonInvalidField, "office_id", ""},
		{"office_id with a control character", with("office_id", `"3171\u0007DKI"`), ReasonInvalidField, "office_id", ""},
		{"office_id with a tab", with("office_id", `"3171\tDKI"`), ReasonInvalidField, "office_id", ""},
		{"office_id holding the NIK", with("office_id", `"DKI-1771014101900001"`), ReasonInvalidField, "office_id", "holds 16 digits that could be a NIK"},
		{"unknown channel", with("channel", `"kiosk"`), ReasonInvalidField, "channel", `want one of ["counter" "outreach"]`},
		{"empty channel", with("channel", `""`), ReasonInvalidField, "channel", ""},
		{"occurred_at without offset", with("occurred_at", `"2023-02-13T09:30:00"`), ReasonInvalidField, "occurred_at", ""},
		{"occurred_at as a date", with("occurred_at", `"2023-02-13"`), ReasonInvalidField, "occurred_at", ""},
		{"occurred_at with a comma fraction", with("occurred_at", `"2023-02-13T09:30:00,5+07:00"`), ReasonInvalidField, "occurred_at", ""},
		{"occurred_at in lowercase", with("occurred_at", `"2023-02-13t02:30:00z"`), ReasonInvalidField, "occurred_at", ""},
		{"occurred_at on 30 February", with("occurred_at", `"2023-02-30T09:30:00+07:00"`), ReasonInvalidField, "occurred_at", "not a real date and time"},
		{"occurred_at as a Unix time", with("occurred_at", `1676255400`), ReasonInvalidField, "occurred_at", "not a JSON string"},
		{"occurred_at before 1970", with("occurred_at", `"1969-12-31T23:59:59Z"`), ReasonInvalidField, "occurred_at", "before 1970"},
		{"occurred_at beyond the tolerance", with("occurred_at", `"2023-02-13T10:05:01+07:00"`), ReasonFutureTime, "occurred_at",
			"2023-02-13T03:05:01Z is after 2023-02-13T03:05:00Z"},
		{"empty event_id", with("event_id", `""`), ReasonInvalidField, "event_id", ""},
		{"event_id of 65 characters", with("event_id", `"`+strings.Repeat("a", 65)+`"`), ReasonInvalidField, "event_id", ""},
		{"event_id with a space", with("event_id", `"a b"`), ReasonInvalidField, "event_id", ""},
		{"event_id with a slash", with("event_id", `"a/b"`), ReasonInvalidField, "event_id", ""},
		{"event_id holding the NIK", with("event_id", `"dki-1771014101900001"`), ReasonInvalidField, "event_id", "holds 16 digits that could be a NIK"},
	}
	b := builder(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Build([]byte(tt.line))
			e := wantError(t, err, tt.reason, tt.field)
			if tt.detail != "" && e.Detail != tt.detail {
				t.Errorf("detail = %q, want %q", e.Detail, tt.detail)
			}
			if strings.Contains(err.Error(), "1771014101900001") {
				t.Errorf("error %q holds the NIK", err)
			}
		})
	}
}

func TestBuildWrapsTheNIKError(t *testing.T) {
	_, err := builder(t).Build([]byte(with("nik", `"9971014101900001"`)))
	var ne *nik.Error
	if !errors.As(err, &ne) || ne.Reason != nik.ReasonUnknownRegion {
		t.Fatalf("error = %v, want it to wrap a *nik.Error", err)
	}
	if want := "events: unknown_region in nik: nik: unknown region 99.71.01: no province 99"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestBuildAcceptsTheLongestOfficeID(t *testing.T) {
	if _, err := builder(t).Build([]byte(with("office_id", `"`+strings.Repeat("a", 64)+`"`))); err != nil {
		t.Errorf("Build: %v", err)
	}
}
