package events

import (
	"strings"
	"testing"
	"time"
)

// exampleEvent is what Build makes of exampleLine.
const exampleEvent = `{"v":1,"event_id":"2043a6c4456d62986d677c65d36e3373","type":"activation","resident":"a56d4d1ebd5fc6e37e5a80aca72347eb","key_id":"d30034884a76","province_code":"17","city_code":"17.71","district_code":"17.71.01","office_id":"3171-DKI-01","channel":"counter","occurred_at":"2023-02-13T02:30:00Z"}`

func TestMarshalWritesTheContractsJSON(t *testing.T) {
	e, err := builder(t).Build([]byte(exampleLine))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	data, err := e.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if string(data) != exampleEvent {
		t.Errorf("Marshal =\n%s, want\n%s", data, exampleEvent)
	}
}

func TestDecodeReadsWhatBuildMade(t *testing.T) {
	lines := []string{
		exampleLine,
		`{"type":"enrolment","nik":"1871011512050001","office_id":"1871-BDL-02","channel":"outreach"}`,
		`{"event_id":"bdl-02:2023-02-13:0042","type":"activation","nik":"1771011501900001","office_id":"Kantor Dukcapil Kota Bengkulu","occurred_at":"2023-02-13T09:30:00.123456789+07:00"}`,
	}
	b, v := builder(t), validator(t)
	for _, line := range lines {
		built, err := b.Build([]byte(line))
		if err != nil {
			t.Fatalf("Build(%s): %v", line, err)
		}
		data, err := built.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		decoded, err := v.Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", data, err)
		}
		if decoded != built {
			t.Errorf("Decode(Marshal(e)) =\n%+v, want\n%+v", decoded, built)
		}
	}
}

func TestDecodeStoresOccurredAtInUTC(t *testing.T) {
	data := strings.Replace(exampleEvent, `"2023-02-13T02:30:00Z"`, `"2023-02-13T09:30:00+07:00"`, 1)
	e, err := validator(t).Decode([]byte(data))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if want := time.Date(2023, 2, 13, 2, 30, 0, 0, time.UTC); e.OccurredAt != want {
		t.Errorf("occurred_at = %v, want %v", e.OccurredAt, want)
	}
}

// set returns the example event with one field set to a raw JSON value, or
// removed when raw is empty.
func set(field, raw string) string {
	var members []string
	for _, member := range strings.Split(strings.Trim(exampleEvent, "{}"), ",") {
		if strings.HasPrefix(member, `"`+field+`":`) {
			if raw == "" {
				continue
			}
			member = `"` + field + `":` + raw
		}
		members = append(members, member)
	}
	if raw != "" && !strings.Contains(exampleEvent, `"`+field+`":`) {
		members = append(members, `"`+field+`":`+raw)
	}
	return "{" + strings.Join(members, ",") + "}"
}

func TestDecodeReadsEventsMadeBeforeKeyIDs(t *testing.T) {
	e, err := validator(t).Decode([]byte(set("key_id", "")))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if e.KeyID != "" {
		t.Errorf("key id %q, want none", e.KeyID)
	}
	if data, _ := e.Marshal(); strings.Contains(string(data), "key_id") {
		t.Errorf("Marshal wrote a key id that was not there: %s", data)
	}
}

func TestDecodeRefusesAMalformedKeyID(t *testing.T) {
	for _, raw := range []string{`""`, `"D30034884A76"`, `"d30034884a7"`, `"d30034884a76d"`, `null`, `12`} {
		_, err := validator(t).Decode([]byte(set("key_id", raw)))
		wantError(t, err, ReasonInvalidField, "key_id")
	}
}

func TestDecodeRequiresEveryField(t *testing.T) {
	for _, field := range eventFields {
		if field == "key_id" {
			continue // optional: events made before key ids have none
		}
		t.Run(field, func(t *testing.T) {
			_, err := validator(t).Decode([]byte(set(field, "")))
			wantError(t, err, ReasonMissingField, field)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		reason Reason
		field  string
	}{
		{"oversized", exampleEvent + strings.Repeat(" ", MaxMessageBytes), ReasonOversized, ""},
		{"not JSON", `v=1`, ReasonMalformedJSON, ""},
		{"an array", `[]`, ReasonMalformedJSON, ""},
		{"trailing data", exampleEvent + `x`, ReasonMalformedJSON, ""},
		{"repeated key", strings.Replace(exampleEvent, `{`, `{"v":1,`, 1), ReasonMalformedJSON, "v"},
		{"a NIK on the broker", set("nik", `"1771014101900001"`), ReasonUnknownField, "nik"},
		{"version 2", set("v", `2`), ReasonUnknownVersion, "v"},
		{"version 1.0", set("v", `1.0`), ReasonUnknownVersion, "v"},
		{"version 0", set("v", `0`), ReasonUnknownVersion, "v"},
		{"version as a string", set("v", `"1"`), ReasonInvalidField, "v"},
		{"version null", set("v", `null`), ReasonInvalidField, "v"},
		{"version is checked before the rest", strings.Replace(set("v", `2`), `"activation"`, `"x"`, 1), ReasonUnknownVersion, "v"},
		{"unknown type", set("type", `"registration"`), ReasonUnknownType, "type"},
		{"bad event_id", set("event_id", `"a b"`), ReasonInvalidField, "event_id"},
		{"resident in uppercase", set("resident", `"A56D4D1EBD5FC6E37E5A80ACA72347EB"`), ReasonInvalidField, "resident"},
		{"resident too short", set("resident", `"a56d4d1ebd5fc6e3"`), ReasonInvalidField, "resident"},
		{"malformed province", set("province_code", `"7"`), ReasonInvalidField, "province_code"},
		{"malformed city", set("city_code", `"1771"`), ReasonInvalidField, "city_code"},
		{"malformed district", set("district_code", `"17.71.1"`), ReasonInvalidField, "district_code"},
		{"unknown province", set("province_code", `"99"`), ReasonUnknownRegion, "province_code"},
		{"city of another province", set("city_code", `"18.71"`), ReasonUnknownRegion, "city_code"},
		{"unknown city", set("city_code", `"17.99"`), ReasonUnknownRegion, "city_code"},
		{"district of another city", set("district_code", `"17.72.01"`), ReasonUnknownRegion, "district_code"},
		{"unknown district", set("district_code", `"17.71.99"`), ReasonUnknownRegion, "district_code"},
		{"empty office_id", set("office_id", `""`), ReasonInvalidField, "office_id"},
		{"unknown channel", set("channel", `"kiosk"`), ReasonInvalidField, "channel"},
		{"occurred_at without offset", set("occurred_at", `"2023-02-13T02:30:00"`), ReasonInvalidField, "occurred_at"},
		{"occurred_at in the future", set("occurred_at", `"2023-02-13T03:05:01Z"`), ReasonFutureTime, "occurred_at"},
	}
	v := validator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Decode([]byte(tt.data))
			wantError(t, err, tt.reason, tt.field)
		})
	}
}
