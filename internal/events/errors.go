package events

import (
	"strings"

	"github.com/ikd-pipeline/ikd/internal/nik"
)

// Reason says in a word why a message was rejected; consumers count and route
// rejects by it.
type Reason string

// The reasons Build and Decode give.
const (
	ReasonMalformedJSON  Reason = "malformed_json"  // not one UTF-8 JSON object, or a key repeated
	ReasonUnknownVersion Reason = "unknown_version" // v is a number other than 1
	ReasonUnknownType    Reason = "unknown_type"    // type is not enrolment or activation
	ReasonMissingField   Reason = "missing_field"   // a required field is absent
	ReasonInvalidField   Reason = "invalid_field"   // a field has the wrong JSON type or shape
	ReasonUnknownRegion  Reason = "unknown_region"  // a region is not in the reference or not where it claims to be
	ReasonInvalidNIK     Reason = "invalid_nik"     // the NIK is malformed, has an impossible birth date or serial 0000
	ReasonFutureTime     Reason = "future_time"     // occurred_at is later than now plus the tolerance
	ReasonOversized      Reason = "oversized"       // longer than MaxMessageBytes
	ReasonUnknownField   Reason = "unknown_field"   // a field the contract does not have
)

// Error is a validation failure: Reason is machine readable, Field names the
// field when there is one. No part of an Error holds a NIK: of the message's
// values only region codes, times and plain field names are repeated, and
// Error redacts any run that could be a NIK all the same.
type Error struct {
	Reason Reason
	Field  string
	Detail string
	cause  error // the *nik.Error behind an invalid_nik or a NIK's unknown_region
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("events: ")
	b.WriteString(string(e.Reason))
	if e.Field != "" {
		b.WriteString(" in ")
		b.WriteString(e.Field)
	}
	switch {
	case e.cause != nil:
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	case e.Detail != "":
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return nik.RedactString(b.String())
}

// Unwrap gives access to the *nik.Error behind a rejected NIK.
func (e *Error) Unwrap() error { return e.cause }

func invalid(field, detail string) *Error {
	return &Error{Reason: ReasonInvalidField, Field: field, Detail: detail}
}
