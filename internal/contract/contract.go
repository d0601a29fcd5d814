// Package contract is what the programs agree on over the broker: the
// streams and their subjects, the headers of a dead letter, and the change
// announcement. Producers, the aggregator, the alerter, replay and reconcile
// import it instead of each other. The events themselves are internal/events.
package contract

import (
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// The project's streams, created or updated at program start, never by hand.
const (
	EventsStream     = "IKD_EVENTS"     // subjects "ikd.v1.>"
	DeadLetterStream = "IKD_DEADLETTER" // subjects "ikd.deadletter.v1.>"
	ChangesStream    = "IKD_CHANGES"    // subjects "ikd.changes.v1.>" (the aggregator announces committed changes)
	AlertsStream     = "IKD_ALERTS"     // subjects "ikd.alerts.v1.>"
)

// Subject prefixes owned by each stream; they must not overlap.
const (
	EventsPrefix     = events.SubjectPrefix // ikd.v1.<type>.<province>.<city>
	DeadLetterPrefix = "ikd.deadletter.v1"  // ikd.deadletter.v1.<reason>
	ChangesPrefix    = "ikd.changes.v1"
	AlertsPrefix     = "ikd.alerts.v1" // ikd.alerts.v1.<severity>.<province>.<city>
)

// Headers a dead letter carries beside the original payload.
const (
	HeaderReason          = "Ikd-Reason"           // why: a validation reason or write_failed
	HeaderDetail          = "Ikd-Detail"           // the error in words
	HeaderOriginalSubject = "Ikd-Original-Subject" // where replay sends it back
	HeaderOriginalSeq     = "Ikd-Original-Seq"     // its sequence in IKD_EVENTS
	// HeaderRedacted counts the runs that could be a NIK which the dead
	// letter no longer holds; the original was erased from the event stream.
	HeaderRedacted = "Ikd-Redacted"
)

// DeadLetterSubject is where messages failing for reason go.
func DeadLetterSubject(reason string) string { return DeadLetterPrefix + "." + reason }

// ChangesSubject is where the aggregator announces each committed batch.
const ChangesSubject = ChangesPrefix + ".batch"

// Announcement says which regions a committed batch touched, so that
// consumers of IKD_CHANGES (the alerter) re-evaluate only those:
//
//	{"cities":["17.71","18.71"],"years":[2023],"events":120,"at":"2023-02-13T03:00:00Z"}
type Announcement struct {
	Cities []string  `json:"cities"` // distinct city codes, sorted
	Years  []int     `json:"years"`  // distinct years (WIB) of the events, sorted
	Events int       `json:"events"` // events written in the batch
	At     time.Time `json:"at"`     // when the batch was acknowledged (RFC 3339)
}
