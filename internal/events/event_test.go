package events

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
)

// now is shortly after the example activation at 09:30 WIB.
var now = time.Date(2023, 2, 13, 10, 0, 0, 0, time.FixedZone("WIB", 7*3600))

const tolerance = 5 * time.Minute

func reference(t testing.TB) *region.Reference {
	t.Helper()
	ref, err := region.Load()
	if err != nil {
		t.Fatalf("region.Load: %v", err)
	}
	return ref
}

func builder(t testing.TB) *Builder {
	t.Helper()
	p, err := nik.NewPseudonymizer([]byte(nik.DevelopmentKey))
	if err != nil {
		t.Fatalf("NewPseudonymizer: %v", err)
	}
	return &Builder{Ref: reference(t), Pseudonyms: p, Now: func() time.Time { return now }, FutureTolerance: tolerance}
}

func validator(t testing.TB) *Validator {
	t.Helper()
	return &Validator{Ref: reference(t), Now: func() time.Time { return now }, FutureTolerance: tolerance}
}

// wantError checks that err is an *Error with the reason and field.
func wantError(t *testing.T, err error, reason Reason, field string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want an *Error", err)
	}
	if e.Reason != reason || e.Field != field {
		t.Errorf("error = %q in %q (%v), want %q in %q", e.Reason, e.Field, err, reason, field)
	}
	return e
}

func TestSubjectIsTypeProvinceAndCity(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"activation in Kota Bengkulu", Event{Type: TypeActivation, ProvinceCode: "17", CityCode: "17.71"}, "ikd.v1.activation.17.71"},
		{"enrolment in Kota Bandar Lampung", Event{Type: TypeEnrolment, ProvinceCode: "18", CityCode: "18.71"}, "ikd.v1.enrolment.18.71"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Subject(); got != tt.want {
				t.Errorf("Subject() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSubjectFilterUsesWildcardsForEmptyParts(t *testing.T) {
	tests := []struct {
		name     string
		typ      Type
		province string
		want     string
	}{
		{"type and province", TypeActivation, "17", "ikd.v1.activation.17.*"},
		{"all provinces", TypeEnrolment, "", "ikd.v1.enrolment.*.*"},
		{"all types", "", "18", "ikd.v1.*.18.*"},
		{"everything", "", "", "ikd.v1.*.*.*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SubjectFilter(tt.typ, tt.province); got != tt.want {
				t.Errorf("SubjectFilter = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"reason only", &Error{Reason: ReasonOversized}, "events: oversized"},
		{"reason and field", &Error{Reason: ReasonMissingField, Field: "nik"}, "events: missing_field in nik"},
		{"with detail", &Error{Reason: ReasonInvalidField, Field: "channel", Detail: "want one of"}, "events: invalid_field in channel: want one of"},
		{"the cause replaces the detail", &Error{Reason: ReasonInvalidNIK, Field: "nik", Detail: "serial",
			cause: fmt.Errorf("nik: serial 0000 is never issued")}, "events: invalid_nik in nik: nik: serial 0000 is never issued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
