package events

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/ikd-pipeline/ikd/internal/nik"
)

// The patterns are the ones in the JSON Schemas, character for character; the
// schema test holds them together.
var (
	// An event id becomes the JetStream Nats-Msg-Id, hence the short, plain form.
	eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	// Printable ASCII: an office id is a code, and the Unicode classes that
	// would describe "printable" are not portable across schema validators.
	officeIDPattern = regexp.MustCompile(`^[ -~]{1,64}$`)
	// RFC 3339 with a time offset; time.Parse alone would also take a comma
	// before the fraction.
	occurredAtPattern   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})$`)
	residentPattern     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	keyIDPattern        = regexp.MustCompile(`^[0-9a-f]{12}$`)
	provinceCodePattern = regexp.MustCompile(`^[0-9]{2}$`)
	cityCodePattern     = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`)
	districtCodePattern = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}\.[0-9]{2}$`)
)

// earliest is the earliest occurred_at accepted: no KTP-el or IKD event is that
// old, and the bound keeps every accepted time within the years that
// time.Time can marshal.
var earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func checkType(s string) error {
	if !slices.Contains(types, Type(s)) {
		return &Error{Reason: ReasonUnknownType, Field: "type", Detail: fmt.Sprintf("want one of %q", types)}
	}
	return nil
}

func checkChannel(s string) error {
	if !slices.Contains(channels, Channel(s)) {
		return invalid("channel", fmt.Sprintf("want one of %q", channels))
	}
	return nil
}

func checkEventID(s string) error {
	if !eventIDPattern.MatchString(s) {
		return invalid("event_id", "want 1 to 64 of A-Z a-z 0-9 . _ : -")
	}
	return checkNoNIK("event_id", s)
}

func checkOfficeID(s string) error {
	if !officeIDPattern.MatchString(s) {
		return invalid("office_id", "want 1 to 64 printable ASCII characters")
	}
	return checkNoNIK("office_id", s)
}

// checkNoNIK refuses a value with a run of digits that could be a NIK (see
// nik.Runs), whoever wrote it: a NIK must not travel in clear in any field.
func checkNoNIK(field, s string) error {
	if nik.HasRun(s) {
		return invalid(field, "holds 16 digits that could be a NIK")
	}
	return nil
}

// parseOccurredAt reads an RFC 3339 time and returns it in UTC, so that equal
// instants compare equal whatever offset the counter used.
func parseOccurredAt(s string, now time.Time, tolerance time.Duration) (time.Time, error) {
	if !occurredAtPattern.MatchString(s) {
		return time.Time{}, invalid("occurred_at", "want RFC 3339 with a time offset, such as 2023-02-13T09:30:00+07:00")
	}
	if err := checkNoNIK("occurred_at", s); err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid("occurred_at", "not a real date and time")
	}
	t = t.UTC()
	if t.Before(earliest) {
		return time.Time{}, invalid("occurred_at", "before 1970")
	}
	if limit := now.Add(tolerance); t.After(limit) {
		return time.Time{}, &Error{Reason: ReasonFutureTime, Field: "occurred_at",
			Detail: fmt.Sprintf("%s is after %s", t.Format(time.RFC3339), limit.UTC().Format(time.RFC3339))}
	}
	return t, nil
}
