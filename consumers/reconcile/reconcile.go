// Package reconcile compares what the broker holds with what the warehouse
// holds: the distinct event ids per subject on each side, and, for every city
// and year, the views' activated residents against the raw events.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/replay"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
)

// maxSamples bounds the ids a report keeps per subject and direction.
const maxSamples = 5

// Subject is one subject's comparison.
type Subject struct {
	Subject    string
	Broker     int      // distinct event ids the warehouse should hold
	Warehouse  int      // distinct event ids the warehouse holds
	Missing    int      // on the broker, not in the warehouse
	Unexpected int      // in the warehouse, not on the broker
	MissingIDs []string // up to maxSamples examples
	ExtraIDs   []string // up to maxSamples examples
}

// Aggregate is a city and year whose view figure differs from the events.
type Aggregate struct {
	Year      uint16
	CityCode  string
	Activated uint64 // ikd.attainment_city
	Residents uint64 // uniqExact(resident) of activation events in ikd.events
}

// Report is the outcome of Reconcile.
type Report struct {
	Subjects     []Subject   // every subject seen on either side, by name
	Aggregates   []Aggregate // only the mismatches
	Messages     int         // messages read from IKD_EVENTS
	DeadLettered int         // event stream sequences dead-lettered, or superseded by a replay
	Checked      int         // city-years compared
}

// Clean says whether both sides agree everywhere.
func (r Report) Clean() bool {
	if len(r.Aggregates) > 0 {
		return false
	}
	for _, s := range r.Subjects {
		if s.Missing > 0 || s.Unexpected > 0 {
			return false
		}
	}
	return true
}

// Print writes the per-subject table and then the differences.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subject\tbroker\twarehouse\tmissing\tunexpected\t")
	var b, wh, m, u int
	for _, s := range r.Subjects {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", s.Subject, s.Broker, s.Warehouse, s.Missing, s.Unexpected)
		b, wh, m, u = b+s.Broker, wh+s.Warehouse, m+s.Missing, u+s.Unexpected
	}
	fmt.Fprintf(tw, "total (%d subjects)\t%d\t%d\t%d\t%d\t\n", len(r.Subjects), b, wh, m, u)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d messages read, %d sequences dead-lettered or replayed, %d city-years checked\n", r.Messages, r.DeadLettered, r.Checked)
	if r.Clean() {
		_, err := fmt.Fprintln(w, "clean: broker and warehouse agree")
		return err
	}
	fmt.Fprintln(w, "\ndifferences:")
	for _, s := range r.Subjects {
		if s.Missing > 0 {
			fmt.Fprintf(w, "  %s: %d missing from the warehouse, e.g. %s\n", s.Subject, s.Missing, strings.Join(s.MissingIDs, ", "))
		}
		if s.Unexpected > 0 {
			fmt.Fprintf(w, "  %s: %d in the warehouse but not on the broker, e.g. %s\n", s.Subject, s.Unexpected, strings.Join(s.ExtraIDs, ", "))
		}
	}
	for _, a := range r.Aggregates {
		fmt.Fprintf(w, "  city %s year %d: views say %d activated, events hold %d residents\n", a.CityCode, a.Year, a.Activated, a.Residents)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// Reconcile reads IKD_EVENTS and IKD_DEADLETTER up to their last message at
// the start and compares them with ikd.events and the views. Run it when the
// aggregator has drained the stream; events still in flight show as missing.
//
// An event is expected in the warehouse unless the stream sequence where its
// id last occurs on its subject was dead-lettered: a replayed dead letter
// brings the id back at a later sequence, which counts unless that one was
// dead-lettered too. (A replayed message names its original in Ikd-Replay-Of,
// which is then superseded whether or not the replay's payload is readable.)
func Reconcile(ctx context.Context, js jetstream.JetStream, conn driver.Conn) (Report, error) {
	var rep Report
	dead, err := deadLettered(ctx, js)
	if err != nil {
		return rep, err
	}
	// subject → event id → last stream sequence of that id.
	bySubject := map[string]map[string]uint64{}
	stream := jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.EventsPrefix + ".>"}}
	rep.Messages, err = broker.ReadStream(ctx, js, broker.EventsStream, stream, func(msg jetstream.Msg, seq uint64) error {
		if orig, err := strconv.ParseUint(msg.Headers().Get(replay.HeaderReplayOf), 10, 64); err == nil {
			// The original was replayed: this message stands for it, and is
			// the one to judge, even if its payload says nothing.
			dead[orig] = struct{}{}
		}
		id := eventID(msg)
		if id == "" {
			return nil // not an event; the aggregator dead-letters it
		}
		ids := bySubject[msg.Subject()]
		if ids == nil {
			ids = map[string]uint64{}
			bySubject[msg.Subject()] = ids
		}
		if seq > ids[id] {
			ids[id] = seq
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	rep.DeadLettered = len(dead)
	subjects := map[string]*Subject{}
	for subject, ids := range bySubject {
		for id, seq := range ids {
			if _, ok := dead[seq]; ok {
				delete(ids, id)
			}
		}
		subjects[subject] = &Subject{Subject: subject, Broker: len(ids)}
	}
	clear(dead)

	rows, err := conn.Query(ctx, "SELECT DISTINCT type, province_code, city_code, event_id FROM ikd.events")
	if err != nil {
		return rep, fmt.Errorf("reconcile: read ikd.events: %w", err)
	}
	for rows.Next() {
		var ev events.Event
		var typ string
		if err := rows.Scan(&typ, &ev.ProvinceCode, &ev.CityCode, &ev.EventID); err != nil {
			rows.Close()
			return rep, fmt.Errorf("reconcile: read ikd.events: %w", err)
		}
		ev.Type = events.Type(typ)
		subject := ev.Subject()
		s := subjects[subject]
		if s == nil {
			s = &Subject{Subject: subject}
			subjects[subject] = s
		}
		s.Warehouse++
		ids := bySubject[subject]
		if _, ok := ids[ev.EventID]; ok {
			delete(ids, ev.EventID) // matched; what stays is missing
			continue
		}
		s.Unexpected++
		if len(s.ExtraIDs) < maxSamples {
			s.ExtraIDs = append(s.ExtraIDs, ev.EventID)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("reconcile: read ikd.events: %w", err)
	}
	for subject, ids := range bySubject {
		s := subjects[subject]
		s.Missing = len(ids)
		for id := range ids {
			if len(s.MissingIDs) == maxSamples {
				break
			}
			s.MissingIDs = append(s.MissingIDs, id)
		}
		slices.Sort(s.MissingIDs)
	}
	for _, s := range subjects {
		rep.Subjects = append(rep.Subjects, *s)
	}
	slices.SortFunc(rep.Subjects, func(a, b Subject) int { return strings.Compare(a.Subject, b.Subject) })

	rep.Aggregates, rep.Checked, err = aggregates(ctx, conn)
	return rep, err
}

// eventID is the event id of a message in the event stream: its Nats-Msg-Id,
// or for a replayed dead letter (and a message published without an id) the
// event_id of its payload.
func eventID(msg jetstream.Msg) string {
	id := msg.Headers().Get(nats.MsgIdHdr)
	if id != "" && !strings.HasPrefix(id, replay.MsgIDPrefix) {
		return id
	}
	var ev struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(msg.Data(), &ev) != nil {
		return ""
	}
	return ev.EventID
}

// deadLettered returns the event stream sequences that have a dead letter.
func deadLettered(ctx context.Context, js jetstream.JetStream) (map[uint64]struct{}, error) {
	dead := map[uint64]struct{}{}
	letters := jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.DeadLetterPrefix + ".>"}, HeadersOnly: true}
	_, err := broker.ReadStream(ctx, js, broker.DeadLetterStream, letters, func(msg jetstream.Msg, seq uint64) error {
		v := msg.Headers().Get(contract.HeaderOriginalSeq)
		orig, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("dead letter %d has %s %q", seq, contract.HeaderOriginalSeq, v)
		}
		dead[orig] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	return dead, nil
}

// cityYear is a key of the aggregate comparison.
type cityYear struct {
	year uint16
	city string
}

// aggregates compares, for every city and year, the activated residents of
// ikd.attainment_city with uniqExact(resident) of the same activation events:
// those up to the end of today in WIB, since ikd.events also holds events up
// to the aggregator's future tolerance ahead, on tomorrow's date near midnight.
// Today is read once so that midnight passing between the two queries cannot
// set the sides on different days.
func aggregates(ctx context.Context, conn driver.Conn) ([]Aggregate, int, error) {
	day, err := todayWIB(ctx, conn)
	if err != nil {
		return nil, 0, err
	}
	// The same as ikd.attainment_city, pinned to that day.
	views, err := countByCityYear(ctx, conn, "ikd.attainment_city", `SELECT toUInt16(year), city_code, toUInt64(activated)
		FROM ikd.attainment_city_as_of(as_of = ?) WHERE activated > 0`, day)
	if err != nil {
		return nil, 0, err
	}
	// Years and days as ikd.residents_daily_mv assigns them (WIB).
	raw, err := countByCityYear(ctx, conn, "ikd.events", `SELECT toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year, toString(city_code), toUInt64(uniqExact(resident))
		FROM ikd.events WHERE type = 'activation' AND toDate(occurred_at, 'Asia/Jakarta') <= toDate(?)
		GROUP BY year, city_code`, day)
	if err != nil {
		return nil, 0, err
	}
	out, checked := compareAggregates(views, raw)
	return out, checked, nil
}

// todayWIB returns the warehouse's date in WIB as YYYY-MM-DD, the as_of of
// the plain attainment views.
func todayWIB(ctx context.Context, conn driver.Conn) (string, error) {
	var day string
	if err := conn.QueryRow(ctx, "SELECT toString(toDate(now(), 'Asia/Jakarta'))").Scan(&day); err != nil {
		return "", fmt.Errorf("reconcile: read today's date in WIB: %w", err)
	}
	return day, nil
}

// countByCityYear runs query on table with args; it returns a year, a city
// code and a count.
func countByCityYear(ctx context.Context, conn driver.Conn, table, query string, args ...any) (map[cityYear]uint64, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reconcile: count %s by city and year: %w", table, err)
	}
	defer rows.Close()
	out := map[cityYear]uint64{}
	for rows.Next() {
		var k cityYear
		var n uint64
		if err := rows.Scan(&k.year, &k.city, &n); err != nil {
			return nil, fmt.Errorf("reconcile: count %s by city and year: %w", table, err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reconcile: count %s by city and year: %w", table, err)
	}
	return out, nil
}

// compareAggregates returns the city-years where views and raw differ, by
// city and year, and how many city-years were compared.
func compareAggregates(views, raw map[cityYear]uint64) ([]Aggregate, int) {
	var out []Aggregate
	checked := 0
	for k, n := range raw {
		checked++
		if views[k] != n {
			out = append(out, Aggregate{Year: k.year, CityCode: k.city, Activated: views[k], Residents: n})
		}
	}
	for k, n := range views {
		if _, ok := raw[k]; !ok {
			checked++
			out = append(out, Aggregate{Year: k.year, CityCode: k.city, Activated: n})
		}
	}
	slices.SortFunc(out, func(a, b Aggregate) int {
		if c := strings.Compare(a.CityCode, b.CityCode); c != 0 {
			return c
		}
		return int(a.Year) - int(b.Year)
	})
	return out, checked
}
