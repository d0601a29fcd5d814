package events

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/nik"
)

// The JSON Schemas are the contract for those who do not read Go. These tests
// hold them and the code together: every name, requirement, enum and pattern
// of a schema must be what Build or Decode does.

type schema struct {
	Schema               string              `json:"$schema"`
	Type                 string              `json:"type"`
	AdditionalProperties *bool               `json:"additionalProperties"`
	Required             []string            `json:"required"`
	Properties           map[string]property `json:"properties"`
	Examples             []json.RawMessage   `json:"examples"`
}

type property struct {
	Type      string   `json:"type"`
	Enum      []string `json:"enum"`
	Const     *int     `json:"const"`
	Default   string   `json:"default"`
	Pattern   string   `json:"pattern"`
	MinLength *int     `json:"minLength"`
	MaxLength *int     `json:"maxLength"`
	Not       *struct {
		Pattern string `json:"pattern"`
	} `json:"not"`
}

func readSchema(t *testing.T, name string) schema {
	t.Helper()
	data, err := os.ReadFile("../../schema/events/v1/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("%s: $schema %q, want draft 2020-12", name, s.Schema)
	}
	if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties {
		t.Errorf("%s: want an object with additionalProperties false", name)
	}
	return s
}

// checkNames compares the schema's properties with the fields the code knows.
func checkNames(t *testing.T, s schema, fields []string) {
	t.Helper()
	if got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(slices.Values(fields)); !slices.Equal(got, want) {
		t.Errorf("schema properties %q, code fields %q", got, want)
	}
}

// checkRequired removes each property from a valid message in turn: the code
// must report missing_field exactly for the schema's required ones.
func checkRequired(t *testing.T, s schema, without func(field string) error) {
	t.Helper()
	for name := range s.Properties {
		err := without(name)
		var e *Error
		missing := errors.As(err, &e) && e.Reason == ReasonMissingField && e.Field == name
		if required := slices.Contains(s.Required, name); missing != required || !required && err != nil {
			t.Errorf("without %s: error %v; schema requires it: %v", name, err, required)
		}
	}
}

// checkEnum compares an enum with the code's list and tries every value.
func checkEnum[T ~string](t *testing.T, p property, code []T, try func(value string) error) {
	t.Helper()
	want := make([]string, len(code))
	for i, v := range code {
		want[i] = string(v)
	}
	if !slices.Equal(p.Enum, want) {
		t.Errorf("schema enum %q, code %q", p.Enum, want)
	}
	for _, v := range p.Enum {
		if err := try(v); err != nil {
			t.Errorf("enum value %q rejected: %v", v, err)
		}
	}
}

// checkPatterns compares each schema pattern with the regexp the code uses;
// the patterns of the fields in byBehaviour are tested by the caller.
func checkPatterns(t *testing.T, s schema, code map[string]*regexp.Regexp, byBehaviour ...string) {
	t.Helper()
	for name, p := range s.Properties {
		re, ok := code[name]
		switch {
		case slices.Contains(byBehaviour, name), p.Pattern == "" && !ok:
		case !ok:
			t.Errorf("%s: schema pattern %q has no regexp in the code", name, p.Pattern)
		case p.Pattern != re.String():
			t.Errorf("%s: schema pattern %q, code %q", name, p.Pattern, re)
		}
	}
}

func TestInputSchemaMatchesBuild(t *testing.T) {
	s := readSchema(t, "input.schema.json")
	b := builder(t)
	build := func(line string) error { _, err := b.Build([]byte(line)); return err }

	checkNames(t, s, inputFields)
	checkRequired(t, s, func(field string) error { return build(with(field, "")) })
	checkEnum(t, s.Properties["type"], types, func(v string) error { return build(with("type", `"`+v+`"`)) })
	checkEnum(t, s.Properties["channel"], channels, func(v string) error { return build(with("channel", `"`+v+`"`)) })
	if got := s.Properties["channel"].Default; got != string(ChannelCounter) {
		t.Errorf("schema channel default %q, code %q", got, ChannelCounter)
	}
	checkPatterns(t, s, map[string]*regexp.Regexp{
		"event_id":    eventIDPattern,
		"office_id":   officeIDPattern,
		"occurred_at": occurredAtPattern,
	}, "nik")
	checkOfficeIDLength(t, s.Properties["office_id"])
	checkNoNIKPatterns(t, s)

	// The NIK is checked by package nik, not by a regexp: its pattern must
	// reject exactly the shapes that Build reports as length or not_digits.
	nikPattern := regexp.MustCompile(s.Properties["nik"].Pattern)
	for _, n := range []string{"1771014101900001", "177101410190001", "17710141019000011", "17710141019000O1", " 771014101900001", "", "１７７１０１４１０１９０００１"} {
		err := build(with("nik", `"`+n+`"`))
		var e *Error
		shape := !(errors.As(err, &e) && (e.Detail == "length" || e.Detail == "not_digits"))
		if nikPattern.MatchString(n) != shape {
			t.Errorf("nik %q: schema pattern matches %v, Build: %v", n, !shape, err)
		}
	}

	for i, example := range s.Examples {
		if err := build(string(example)); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
	}
}

func TestEventSchemaMatchesDecode(t *testing.T) {
	s := readSchema(t, "event.schema.json")
	v := validator(t)
	decode := func(data string) error { _, err := v.Decode([]byte(data)); return err }

	checkNames(t, s, eventFields)
	var tags []string
	for f := range reflect.TypeFor[Event]().Fields() {
		// A field kept out of the JSON (ReceivedAt) is not the contract's.
		if tag := strings.Split(f.Tag.Get("json"), ",")[0]; tag != "-" {
			tags = append(tags, tag)
		}
	}
	checkNames(t, s, tags)
	checkRequired(t, s, func(field string) error { return decode(set(field, "")) })
	if p := s.Properties["v"]; p.Type != "integer" || p.Const == nil || *p.Const != Version {
		t.Errorf("schema v: type %q, const %v; want the integer constant %d", p.Type, p.Const, Version)
	}
	checkEnum(t, s.Properties["type"], types, func(val string) error { return decode(set("type", `"`+val+`"`)) })
	checkEnum(t, s.Properties["channel"], channels, func(val string) error { return decode(set("channel", `"`+val+`"`)) })
	checkPatterns(t, s, map[string]*regexp.Regexp{
		"event_id":      eventIDPattern,
		"resident":      residentPattern,
		"key_id":        keyIDPattern,
		"province_code": provinceCodePattern,
		"city_code":     cityCodePattern,
		"district_code": districtCodePattern,
		"office_id":     officeIDPattern,
		"occurred_at":   occurredAtPattern,
	})
	checkOfficeIDLength(t, s.Properties["office_id"])
	checkNoNIKPatterns(t, s)

	if len(s.Examples) != 1 {
		t.Fatalf("want one example event, got %d", len(s.Examples))
	}
	if err := decode(string(s.Examples[0])); err != nil {
		t.Errorf("example: %v", err)
	}
	// The example is what Build makes of the input schema's first example
	// with the development key.
	in := readSchema(t, "input.schema.json")
	e, err := builder(t).Build(in.Examples[0])
	if err != nil {
		t.Fatal(err)
	}
	data, _ := e.Marshal()
	var got, want any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(s.Examples[0], &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Build(input example) = %s, event example %s", data, s.Examples[0])
	}
}

// noNIKFields are the fields whose schema says, with a "not" pattern, what
// checkNoNIK refuses.
var noNIKFields = []string{"event_id", "office_id", "occurred_at"}

// checkNoNIKPatterns holds each "not" pattern to nik.HasRun on ASCII text,
// which is all a schema pattern can speak of portably.
func checkNoNIKPatterns(t *testing.T, s schema) {
	t.Helper()
	samples := []string{"1771014101900001", "177101410190000", "x1771014101900001y", "1771 0141 0190 0001",
		"17.71.01.410190.0001", "1771 - 0141 - 0190 - 0001", "17710141    01900001", "17710141:01900001",
		"2023-02-13T09:30:00.123+07:00", "2023-02-13T09:30:00.1771014101900001Z", "1771_0141/0190_0001"}
	for name, p := range s.Properties {
		if want := slices.Contains(noNIKFields, name); (p.Not != nil) != want {
			t.Errorf("%s: schema has a \"not\" pattern: %v, want %v", name, p.Not != nil, want)
			continue
		}
		if p.Not == nil {
			continue
		}
		re := regexp.MustCompile(p.Not.Pattern)
		for _, sample := range samples {
			if re.MatchString(sample) != nik.HasRun(sample) {
				t.Errorf("%s: \"not\" pattern matches %q: %v, code: %v", name, sample, re.MatchString(sample), nik.HasRun(sample))
			}
		}
	}
}

// checkOfficeIDLength keeps minLength and maxLength, which repeat the
// pattern's bounds for readers, in line with the code.
func checkOfficeIDLength(t *testing.T, p property) {
	t.Helper()
	if p.MinLength == nil || *p.MinLength != 1 || p.MaxLength == nil || *p.MaxLength != 64 {
		t.Errorf("office_id lengths %v..%v, want 1..64", p.MinLength, p.MaxLength)
	}
	for n, ok := range map[int]bool{0: false, 1: true, 64: true, 65: false} {
		if got := checkOfficeID(strings.Repeat("a", n)) == nil; got != ok {
			t.Errorf("office_id of %d characters accepted: %v, want %v", n, got, ok)
		}
	}
}
