// Package reconcile compares what the broker holds with what the warehouse
// holds: the distinct event ids per subject on each side, and, for every city
// and year, the views' activated residents against the raw events. It works
// on a running system: it compares both sides only up to a cut taken when it
// starts, the stream sequence below which the aggregators have settled every
// message (written or dead-lettered).
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
	Cut          uint64      // IKD_EVENTS sequences up to this one were compared
	CutFrom      string      // what the cut is: the aggregator's ack floor, or the stream's end
	Messages     int         // messages read from IKD_EVENTS up to the cut
	DeadLettered int         // event stream sequences dead-lettered, or superseded by a replay
	Checked      int         // city-years compared
	Unsettled    int         // of Checked, city-years still changing after every round, checked within bounds
}

// Options name what the cut is read from.
type Options struct {
	// Durable is the aggregators' consumer on IKD_EVENTS; every message up to
	// its ack floor is written or dead-lettered. Without it, or when it does
	// not exist, the cut is the stream's last message.
	Durable string
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

// Print writes a summary and the differences; all adds the per-subject table.
func (r Report) Print(w io.Writer, all bool) error {
	var b, wh, m, u int
	for _, s := range r.Subjects {
		b, wh, m, u = b+s.Broker, wh+s.Warehouse, m+s.Missing, u+s.Unexpected
	}
	if all {
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "subject\tbroker\twarehouse\tmissing\tunexpected\t")
		for _, s := range r.Subjects {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", s.Subject, s.Broker, s.Warehouse, s.Missing, s.Unexpected)
		}
		fmt.Fprintf(tw, "total (%d subjects)\t%d\t%d\t%d\t%d\t\n", len(r.Subjects), b, wh, m, u)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "cut: IKD_EVENTS up to sequence %d (%s)\n", r.Cut, r.CutFrom)
	fmt.Fprintf(w, "events: %d messages read, %d event ids expected, %d in the warehouse, %d missing, %d unexpected, %d sequences dead-lettered or replayed\n",
		r.Messages, b, wh, m, u, r.DeadLettered)
	fmt.Fprintf(w, "views: %d city-years checked, %d differ", r.Checked, len(r.Aggregates))
	if r.Unsettled > 0 {
		fmt.Fprintf(w, " (%d still changing, their views between two reads of the events)", r.Unsettled)
	}
	fmt.Fprintln(w)
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

// Reconcile takes the cut (see Options), then reads IKD_DEADLETTER and
// IKD_EVENTS and compares the events up to the cut with ikd.events; rows
// written for later sequences are in flight and left out. The cut is read
// first so that whatever it covers is already settled: written, or
// dead-lettered (a dead letter replayed since shows as the replay's
// Ikd-Replay-Of in the event stream, which is read to its end).
//
// An event is expected in the warehouse unless the stream sequence where its
// id last occurs on its subject, up to the cut, was dead-lettered: a replayed
// dead letter brings the id back at a later sequence, which counts unless
// that one was dead-lettered too. (A replayed message names its original in
// Ikd-Replay-Of, which is then superseded whether or not the replay's payload
// is readable.)
func Reconcile(ctx context.Context, js jetstream.JetStream, conn driver.Conn, opt Options) (Report, error) {
	var rep Report
	var err error
	rep.Cut, rep.CutFrom, err = cut(ctx, js, opt.Durable)
	if err != nil {
		return rep, err
	}
	dead, err := deadLettered(ctx, js)
	if err != nil {
		return rep, err
	}
	// subject → event id → last stream sequence of that id.
	bySubject := map[string]map[string]uint64{}
	stream := jetstream.OrderedConsumerConfig{FilterSubjects: []string{broker.EventsPrefix + ".>"}}
	_, err = broker.ReadStream(ctx, js, broker.EventsStream, stream, func(msg jetstream.Msg, seq uint64) error {
		if orig, err := strconv.ParseUint(msg.Headers().Get(replay.HeaderReplayOf), 10, 64); err == nil {
			// The original was replayed: this message stands for it, and is
			// the one to judge, even if its payload says nothing.
			dead[orig] = struct{}{}
		}
		if seq > rep.Cut {
			return nil // in flight: only its Ikd-Replay-Of matters
		}
		rep.Messages++
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

	// An id written once before the cut and again after it (a republish)
	// is matched by either row; a row only after the cut is in flight.
	rows, err := conn.Query(ctx, "SELECT type, province_code, city_code, event_id, min(stream_seq) FROM ikd.events GROUP BY ALL")
	if err != nil {
		return rep, fmt.Errorf("reconcile: read ikd.events: %w", err)
	}
	for rows.Next() {
		var ev events.Event
		var typ string
		var seq uint64
		if err := rows.Scan(&typ, &ev.ProvinceCode, &ev.CityCode, &ev.EventID, &seq); err != nil {
			rows.Close()
			return rep, fmt.Errorf("reconcile: read ikd.events: %w", err)
		}
		ev.Type = events.Type(typ)
		subject := ev.Subject()
		ids := bySubject[subject]
		_, expected := ids[ev.EventID]
		if !expected && seq > rep.Cut {
			continue
		}
		s := subjects[subject]
		if s == nil {
			s = &Subject{Subject: subject}
			subjects[subject] = s
		}
		s.Warehouse++
		if expected {
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

	rep.Aggregates, rep.Checked, rep.Unsettled, err = aggregates(ctx, conn)
	return rep, err
}

// cut returns the event stream sequence up to which every message is
// settled: the ack floor of the aggregators' durable consumer (an aggregator
// acknowledges after the write, and terminates after the dead letter), or
// the stream's last sequence when there is no such consumer.
func cut(ctx context.Context, js jetstream.JetStream, durable string) (uint64, string, error) {
	if durable != "" {
		cons, err := js.Consumer(ctx, broker.EventsStream, durable)
		if err == nil {
			info, err := cons.Info(ctx)
			if err != nil {
				return 0, "", fmt.Errorf("reconcile: consumer %s: %w", durable, err)
			}
			return info.AckFloor.Stream, "every message settled by consumer " + durable, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return 0, "", fmt.Errorf("reconcile: consumer %s: %w", durable, err)
		}
	}
	stream, err := js.Stream(ctx, broker.EventsStream)
	if err != nil {
		return 0, "", fmt.Errorf("reconcile: stream %s: %w", broker.EventsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("reconcile: stream %s: %w", broker.EventsStream, err)
	}
	return info.State.LastSeq, "the stream's end: no aggregator consumer " + durable, nil
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

// rounds bounds how often aggregates reads both sides before it gives up on
// the city-years that keep changing; between rounds it waits firstPause,
// doubling, so that a view still behind its events (the first-seen ledger
// is written just after the events of its batch) has time to catch up.
const (
	rounds     = 5
	firstPause = 250 * time.Millisecond
	// confirmAfter is how long a difference must stay the same, figures
	// and all, to count: longer than a batch's ledger write.
	confirmAfter = time.Second
)

// aggregates compares, for every city and year, the activated residents of
// ikd.attainment_city with uniqExact(resident) of the same activation events:
// those up to the end of today in WIB, since ikd.events also holds events up
// to the aggregator's future tolerance ahead, on tomorrow's date near midnight.
// Today is read once so that midnight passing between the queries cannot set
// the sides on different days.
//
// Events keep arriving while it runs, so each round reads the events, the
// views, and the events again: a city-year whose events did not change
// meanwhile and whose view agrees is settled; any other may be a view behind
// the batch being written, and is compared again a round later. A difference
// counts only when it stayed the same, events and view, for confirmAfter. It
// returns the differences, how many city-years were compared, and how many of
// those kept changing through every round and were only bounded.
func aggregates(ctx context.Context, conn driver.Conn) ([]Aggregate, int, int, error) {
	day, err := todayWIB(ctx, conn)
	if err != nil {
		return nil, 0, 0, err
	}
	type sighting struct {
		views, events uint64
		at            time.Time
	}
	var out []Aggregate
	first := map[cityYear]sighting{} // a difference's first sighting
	done := map[cityYear]bool{}
	checked, unsettled := 0, 0
	pause := firstPause
	for round := 0; round < rounds; round++ {
		if round > 0 {
			if err := wait(ctx, pause); err != nil {
				return nil, 0, 0, err
			}
			pause *= 2
		}
		before, views, after, err := readSides(ctx, conn, day)
		if err != nil {
			return nil, 0, 0, err
		}
		now := time.Now()
		unsettled = 0
		for _, k := range union(before, views, after) {
			if done[k] {
				continue
			}
			if before[k] == after[k] && views[k] == after[k] {
				done[k] = true
				checked++
				continue
			}
			seen := sighting{views: views[k], events: after[k], at: now}
			if f, ok := first[k]; ok && before[k] == after[k] && f.views == seen.views && f.events == seen.events {
				if now.Sub(f.at) >= confirmAfter {
					done[k] = true
					checked++
					out = append(out, Aggregate{Year: k.year, CityCode: k.city, Activated: views[k], Residents: after[k]})
					continue
				}
			} else {
				first[k] = seen
			}
			unsettled++
		}
		if unsettled == 0 {
			break
		}
	}
	checked += unsettled
	slices.SortFunc(out, func(a, b Aggregate) int {
		if c := strings.Compare(a.CityCode, b.CityCode); c != 0 {
			return c
		}
		return int(a.Year) - int(b.Year)
	})
	return out, checked, unsettled, nil
}

// wait pauses for d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readSides reads the raw events' counts, the views' and the raw events'
// again, all as of day.
func readSides(ctx context.Context, conn driver.Conn, day string) (before, views, after map[cityYear]uint64, err error) {
	// Years and days as the first-seen ledger's writer assigns them (WIB).
	const raw = `SELECT toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year, toString(city_code), toUInt64(uniqExact(resident))
		FROM ikd.events WHERE type = 'activation' AND toDate(occurred_at, 'Asia/Jakarta') <= toDate(?)
		GROUP BY year, city_code`
	if before, err = countByCityYear(ctx, conn, "ikd.events", raw, day); err != nil {
		return
	}
	// The same as ikd.attainment_city, pinned to that day.
	if views, err = countByCityYear(ctx, conn, "ikd.attainment_city", `SELECT toUInt16(year), city_code, toUInt64(activated)
		FROM ikd.attainment_city_as_of(as_of = ?) WHERE activated > 0`, day); err != nil {
		return
	}
	after, err = countByCityYear(ctx, conn, "ikd.events", raw, day)
	return
}

// union returns the keys of every map, sorted.
func union(ms ...map[cityYear]uint64) []cityYear {
	set := map[cityYear]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	out := make([]cityYear, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b cityYear) int {
		if c := strings.Compare(a.city, b.city); c != 0 {
			return c
		}
		return int(a.year) - int(b.year)
	})
	return out
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
