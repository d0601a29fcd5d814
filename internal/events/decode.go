package events

import (
	"regexp"
	"time"

	"github.com/ikd-pipeline/ikd/internal/region"
)

// eventFields are the fields of an Event, in the schema's order.
var eventFields = []string{"v", "event_id", "type", "resident", "key_id", "province_code", "city_code", "district_code", "office_id", "channel", "occurred_at"}

// Validator checks events again on the consumer side, so that nothing a
// producer got wrong, or anyone else put on the broker, reaches the counts.
// Ref is required; Now defaults to time.Now. A Validator is safe for
// concurrent use.
type Validator struct {
	Ref             *region.Reference
	Now             func() time.Time
	FutureTolerance time.Duration // how far occurred_at may run ahead of Now, for clock skew
}

// Decode parses and validates one Event; every field is required. Errors are
// *Error.
func (v *Validator) Decode(data []byte) (Event, error) {
	obj, err := parseObject(data, eventFields)
	if err != nil {
		return Event{}, err
	}
	// The version comes first: the rest of the checks are those of version 1.
	if err := checkVersion(obj); err != nil {
		return Event{}, err
	}
	e := Event{V: Version}
	r := fieldReader{obj: obj}
	e.EventID = r.read("event_id", checkEventID)
	e.Type = Type(r.read("type", checkType))
	e.Resident = r.read("resident", pattern("resident", residentPattern, "want 32 lowercase hex digits"))
	e.KeyID = r.optional("key_id", pattern("key_id", keyIDPattern, "want 12 lowercase hex digits"))
	e.ProvinceCode = r.read("province_code", pattern("province_code", provinceCodePattern, "want two digits, such as 17"))
	e.CityCode = r.read("city_code", pattern("city_code", cityCodePattern, "want a code such as 17.71"))
	e.DistrictCode = r.read("district_code", pattern("district_code", districtCodePattern, "want a code such as 17.71.01"))
	e.OfficeID = r.read("office_id", checkOfficeID)
	e.Channel = Channel(r.read("channel", checkChannel))
	occurredAt := r.read("occurred_at", nil)
	if r.err != nil {
		return Event{}, r.err
	}
	if err := checkDomicile(v.Ref, e.ProvinceCode, e.CityCode, e.DistrictCode); err != nil {
		return Event{}, err
	}
	if e.OccurredAt, err = parseOccurredAt(occurredAt, clock(v.Now), v.FutureTolerance); err != nil {
		return Event{}, err
	}
	return e, nil
}

// fieldReader reads required string fields and keeps the first error, so that
// Decode reads as the list of its fields.
type fieldReader struct {
	obj object
	err error
}

// read returns the field's value after check, which may be nil; once an error
// is kept it returns "".
func (r *fieldReader) read(field string, check func(string) error) string {
	if r.err != nil {
		return ""
	}
	s, err := r.obj.required(field)
	if err == nil && check != nil {
		err = check(s)
	}
	if err != nil {
		r.err = err
		return ""
	}
	return s
}

// optional is read for a field that may be absent, which gives "".
func (r *fieldReader) optional(field string, check func(string) error) string {
	if _, ok := r.obj[field]; !ok {
		return ""
	}
	return r.read(field, check)
}

// pattern checks a field against re, saying what it wants when it fails.
func pattern(field string, re *regexp.Regexp, want string) func(string) error {
	return func(s string) error {
		if !re.MatchString(s) {
			return invalid(field, want)
		}
		return nil
	}
}

// checkVersion accepts v only as the JSON number 1.
func checkVersion(obj object) error {
	raw, ok := obj["v"]
	switch {
	case !ok:
		return &Error{Reason: ReasonMissingField, Field: "v"}
	case string(raw) == "1":
		return nil
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return &Error{Reason: ReasonUnknownVersion, Field: "v", Detail: "this consumer reads version 1"}
	default:
		return invalid("v", "not a JSON number")
	}
}

// checkDomicile checks that the regions exist and nest, because consumers
// aggregate by each level and a city counted under the wrong province would
// skew both.
func checkDomicile(ref *region.Reference, province, city, district string) error {
	if _, ok := ref.Province(province); !ok {
		return &Error{Reason: ReasonUnknownRegion, Field: "province_code", Detail: "no province " + province}
	}
	if c, ok := ref.City(city); !ok || c.ProvinceCode != province {
		return &Error{Reason: ReasonUnknownRegion, Field: "city_code", Detail: "no city " + city + " in province " + province}
	}
	if d, ok := ref.District(district); !ok || d.CityCode != city {
		return &Error{Reason: ReasonUnknownRegion, Field: "district_code", Detail: "no district " + district + " in city " + city}
	}
	return nil
}
