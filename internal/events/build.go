package events

import (
	"errors"
	"strconv"
	"time"

	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
)

// inputFields are the fields of a counter's input line, in the schema's order.
var inputFields = []string{"event_id", "type", "nik", "office_id", "occurred_at", "channel"}

// derivation names the recipe of derived event ids; changing it changes every
// derived id, and with it what counts as a duplicate.
const derivation = "v1"

// Builder turns counter input lines into events on the producer side, the only
// side that sees a NIK. Ref and Pseudonyms are required; Now defaults to
// time.Now. A Builder is safe for concurrent use.
type Builder struct {
	Ref             *region.Reference
	Pseudonyms      *nik.Pseudonymizer
	Now             func() time.Time
	FutureTolerance time.Duration // how far occurred_at may run ahead of Now, for clock skew
}

// Build validates one input line, a JSON object such as
//
//	{"type":"activation","nik":"1771014101900001","office_id":"3171-DKI-01","occurred_at":"2023-02-13T09:30:00+07:00","channel":"counter"}
//
// and returns its Event. The region codes come from the NIK, as a resident
// may be served by any office. Without an event_id, the id is derived from the
// line's fields, so a line sent twice gets the same id and counts once. Errors
// are *Error.
func (b *Builder) Build(line []byte) (Event, error) {
	obj, err := parseObject(line, inputFields)
	if err != nil {
		return Event{}, err
	}
	now := clock(b.Now)
	e := Event{V: Version, Channel: ChannelCounter, OccurredAt: now.UTC()}

	s, err := obj.required("type")
	if err != nil {
		return Event{}, err
	}
	if err := checkType(s); err != nil {
		return Event{}, err
	}
	e.Type = Type(s)

	number, err := obj.required("nik")
	if err != nil {
		return Event{}, err
	}
	holder, err := nik.Parse(number, b.Ref, now)
	if err != nil {
		return Event{}, nikError(err)
	}
	e.Resident = b.Pseudonyms.Resident(number)
	e.KeyID = b.Pseudonyms.KeyID()
	e.ProvinceCode, e.CityCode, e.DistrictCode = holder.ProvinceCode, holder.CityCode, holder.DistrictCode

	if e.OfficeID, err = obj.required("office_id"); err != nil {
		return Event{}, err
	}
	if err := checkOfficeID(e.OfficeID); err != nil {
		return Event{}, err
	}

	if s, ok, err := obj.text("channel"); err != nil {
		return Event{}, err
	} else if ok {
		if err := checkChannel(s); err != nil {
			return Event{}, err
		}
		e.Channel = Channel(s)
	}

	occurredAt, ok, err := obj.text("occurred_at")
	if err != nil {
		return Event{}, err
	}
	if ok {
		if e.OccurredAt, err = parseOccurredAt(occurredAt, now, b.FutureTolerance); err != nil {
			return Event{}, err
		}
	}

	e.EventID, ok, err = obj.text("event_id")
	if err != nil {
		return Event{}, err
	}
	if !ok {
		// occurred_at enters as given, or empty when absent, never as Now: the
		// same line must give the same id whenever it is sent.
		e.EventID = b.derivedID(e, number, occurredAt)
		return e, nil
	}
	if err := checkEventID(e.EventID); err != nil {
		return Event{}, err
	}
	return e, nil
}

// nikError keeps an unknown region apart from other NIK faults, since it may
// mean that the reference is out of date rather than that the NIK is wrong.
func nikError(err error) *Error {
	e := &Error{Reason: ReasonInvalidNIK, Field: "nik", cause: err}
	var ne *nik.Error
	if errors.As(err, &ne) {
		e.Detail = string(ne.Reason)
		if ne.Reason == nik.ReasonUnknownRegion {
			e.Reason = ReasonUnknownRegion
		}
	}
	return e
}

// derivedID is the event's id when the line gives none: a keyed sum of its
// fields. About 1 in 100 sums' hex holds 16 decimal digits in a row, which
// consumers refuse as a possible NIK, so such a sum is taken again with a
// counter; the id stays the same whenever the same line is built.
func (b *Builder) derivedID(e Event, number, occurredAt string) string {
	parts := []string{derivation, string(e.Type), number, e.OfficeID, occurredAt, string(e.Channel)}
	id := b.Pseudonyms.Sum(parts...)
	for again := 1; nik.HasRun(id); again++ {
		id = b.Pseudonyms.Sum(append(parts, strconv.Itoa(again))...)
	}
	return id
}

func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}
