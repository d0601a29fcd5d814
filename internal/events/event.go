// Package events is the v1 contract between the service counters and the
// consumers: a Builder turns a counter's input line, which holds a NIK, into an
// Event, which holds only a pseudonym and the resident's domicile, and a
// Validator checks every Event again on the consumer side. The same contract is
// written as JSON Schemas in schema/events/v1.
package events

import (
	"encoding/json"
	"strings"
	"time"
)

// Version is the contract version an Event carries in its v field.
const Version = 1

// MaxMessageBytes bounds input lines and events; larger payloads are rejected
// before parsing, as a valid one is a few hundred bytes.
const MaxMessageBytes = 4096

// SubjectPrefix starts every subject of this contract version.
const SubjectPrefix = "ikd.v1"

// WIB is Western Indonesia Time (UTC+7, no daylight saving): the warehouse
// counts every region's days and years in it, as 'Asia/Jakarta' in schema/,
// so that a national target has one year end.
var WIB = time.FixedZone("WIB", 7*3600)

// Type is what happened at the counter.
type Type string

// The event types.
const (
	TypeEnrolment  Type = "enrolment"  // biometrics recorded for the KTP-el (perekaman)
	TypeActivation Type = "activation" // the digital identity (IKD) activated on a phone
)

// Channel is how the office reached the resident.
type Channel string

// The channels.
const (
	ChannelCounter  Channel = "counter"  // at an office's counter
	ChannelOutreach Channel = "outreach" // by a team visiting residents ("jemput bola")
)

// types and channels list what the contract accepts, in the schema's order.
var (
	types    = []Type{TypeEnrolment, TypeActivation}
	channels = []Channel{ChannelCounter, ChannelOutreach}
)

// Event is what travels on the broker. It holds no NIK: the resident is a
// pseudonym and the region codes are the resident's domicile, read from the
// NIK, not the office's.
type Event struct {
	V            int       `json:"v"` // always Version
	EventID      string    `json:"event_id"`
	Type         Type      `json:"type"`
	Resident     string    `json:"resident"`         // pseudonym, 32 lowercase hex
	KeyID        string    `json:"key_id,omitempty"` // the pseudonym key's id, 12 lowercase hex; absent in events made before key ids
	ProvinceCode string    `json:"province_code"`    // "17"
	CityCode     string    `json:"city_code"`        // "17.71"
	DistrictCode string    `json:"district_code"`    // "17.71.01"
	OfficeID     string    `json:"office_id"`
	Channel      Channel   `json:"channel"`
	OccurredAt   time.Time `json:"occurred_at"` // RFC 3339, UTC after Build and Decode

	// ReceivedAt is when an office agent took the event in; it travels in
	// the spool and as a message header, not in the contract's body.
	ReceivedAt time.Time `json:"-"`
}

// Subject is the broker subject of a valid event, such as
// "ikd.v1.activation.17.71": type, province and the city's own two digits, so
// that consumers can filter by type and region without decoding. Districts are
// left out to keep the number of subjects small.
func (e Event) Subject() string {
	_, city, _ := strings.Cut(e.CityCode, ".")
	return SubjectPrefix + "." + string(e.Type) + "." + e.ProvinceCode + "." + city
}

// SubjectFilter is the subject filter for events of a type in a province, such
// as "ikd.v1.activation.17.*"; an empty type or province matches all.
func SubjectFilter(t Type, province string) string {
	return SubjectPrefix + "." + wildcard(string(t)) + "." + wildcard(province) + ".*"
}

func wildcard(token string) string {
	if token == "" {
		return "*"
	}
	return token
}

// Marshal encodes the event as the JSON the broker carries.
func (e Event) Marshal() ([]byte, error) { return json.Marshal(e) }
