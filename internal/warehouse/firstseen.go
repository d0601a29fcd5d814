package warehouse

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// wib is Western Indonesia Time, in which the registry counts days and
// years. A fixed UTC+7 (as it has been since 1964) instead of the zone
// database, so that no program depends on the machine's tzdata; it agrees
// with the warehouse's toDate(occurred_at, 'Asia/Jakarta').
var wib = time.FixedZone("WIB", 7*60*60)

// ResidentKey is the 16 bytes by which the ledger knows a resident: the
// pseudonym's own bytes when it is 32 lowercase hex digits, as every
// accepted event's is, else the MD5 of the text (for rows written by hand).
// residentKeySQL is the same in the warehouse.
type ResidentKey [16]byte

// KeyOf returns the ledger's key for a pseudonym.
func KeyOf(resident string) ResidentKey {
	var k ResidentKey
	if len(resident) == 32 && strings.ToLower(resident) == resident {
		if _, err := hex.Decode(k[:], []byte(resident)); err == nil {
			return k
		}
	}
	return md5.Sum([]byte(resident))
}

// residentKeySQL is KeyOf over ikd.events.resident.
const residentKeySQL = `if(match(resident, '^[0-9a-f]{32}$'), toFixedString(unhex(resident), 16), MD5(resident))`

// Counted is what the ledger counts a resident once for: one type of event,
// one year and one city, the domicile their events give (one per resident,
// since the NIK encodes it; a resident whose events name two cities counts
// in each, as the sets of residents counted them).
type Counted struct {
	Type     string
	Year     uint16
	Province string
	City     string
	Resident ResidentKey
}

// Sighting is one event as the ledger sees it. Days are WIB dates, at
// midnight UTC, as the warehouse returns a Date.
type Sighting struct {
	Counted
	Day time.Time
	At  time.Time // the event's time
}

// SightingOf returns the sighting of an accepted event.
func SightingOf(r Record) Sighting {
	at := r.OccurredAt.In(wib)
	return Sighting{
		Counted: Counted{Type: string(r.Type), Year: uint16(at.Year()), Province: r.ProvinceCode, City: r.CityCode, Resident: KeyOf(r.Resident)},
		Day:     time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC),
		At:      r.OccurredAt,
	}
}

// Newest is a row of the ledger that counts no one (the zero resident, sign
// 0): the newest time of the events of one type, city and WIB day in a
// batch, which the ledger's projections keep with the counts (max(last_at))
// for the views' last_activation_at. A max is idempotent, so the rows of a
// batch written twice, or regrouped, change nothing.
type Newest struct {
	Type     string
	Year     uint16
	Province string
	City     string
	Day      time.Time
	At       time.Time
}

// NewestOf returns the newest rows of a batch, sorted, so that the same
// batch gives the same rows.
func NewestOf(batch []Sighting) []Newest {
	newest := map[Newest]time.Time{} // by the row without its time
	for _, s := range batch {
		k := Newest{Type: s.Type, Year: s.Year, Province: s.Province, City: s.City, Day: s.Day}
		if at, ok := newest[k]; !ok || s.At.After(at) {
			newest[k] = s.At
		}
	}
	out := make([]Newest, 0, len(newest))
	for row, at := range newest {
		row.At = at
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b Newest) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Year, b.Year), cmp.Compare(a.City, b.City),
			a.Day.Compare(b.Day), cmp.Compare(a.Province, b.Province))
	})
	return out
}

// Transition is one signed row of the ledger.
type Transition struct {
	Counted
	Day  time.Time
	Sign int8
}

// Transitions returns the rows that bring the ledger from current (the day
// each counted resident was first seen so far; absent when never seen) to
// include the batch's sightings: +1 on a new resident's first day; -1 on the
// old day and +1 on the new one when the batch holds an earlier day; nothing
// otherwise. The result is sorted, so that the same batch over the same
// ledger gives the same rows.
func Transitions(current map[Counted]time.Time, batch []Sighting) []Transition {
	first := make(map[Counted]time.Time, len(batch))
	for _, s := range batch {
		if d, ok := first[s.Counted]; !ok || s.Day.Before(d) {
			first[s.Counted] = s.Day
		}
	}
	out := make([]Transition, 0, len(first))
	for c, d := range first {
		old, seen := current[c]
		switch {
		case !seen:
			out = append(out, Transition{Counted: c, Day: d, Sign: 1})
		case d.Before(old):
			out = append(out, Transition{Counted: c, Day: old, Sign: -1}, Transition{Counted: c, Day: d, Sign: 1})
		}
	}
	slices.SortFunc(out, compareTransitions)
	return out
}

func compareTransitions(a, b Transition) int {
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Year, b.Year); c != 0 {
		return c
	}
	if c := slices.Compare(a.Resident[:], b.Resident[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.City, b.City); c != 0 {
		return c
	}
	return cmp.Compare(a.Sign, b.Sign)
}

// ledgerToken is the insert's deduplication token, derived from the rows
// themselves: the same transitions are only ever right once (a resident's
// first day only moves earlier), and newest rows written again change
// nothing, so a retry of an insert that landed is dropped.
func ledgerToken(ts []Transition, newest []Newest) string {
	h := sha256.New()
	var buf []byte
	for _, t := range ts {
		buf = append(buf[:0], t.Type...)
		buf = binary.BigEndian.AppendUint16(buf, t.Year)
		buf = append(buf, t.Resident[:]...)
		buf = append(append(append(append(buf, t.Province...), 0), t.City...), 0)
		buf = append(t.Day.AppendFormat(buf, time.DateOnly), 0, byte(t.Sign))
		h.Write(buf)
	}
	for _, n := range newest {
		buf = append(buf[:0], n.Type...)
		buf = binary.BigEndian.AppendUint16(buf, n.Year)
		buf = append(append(append(append(buf, n.Province...), 0), n.City...), 0)
		buf = binary.BigEndian.AppendUint64(append(n.Day.AppendFormat(buf, time.DateOnly), 0), uint64(n.At.UnixMilli()))
		h.Write(buf)
	}
	return "first-seen-" + hex.EncodeToString(h.Sum(nil))
}

// countFirstSeen brings the ledger up to date with records, already written
// to ikd.events: it reads the first day of the batch's residents that seen
// (nil: none) may hold (one query on the ledger's primary key), and inserts
// the transitions with the batch's newest rows. Run by the single active
// writer; see README, "Exactly once", for why a crash at any point leaves
// the ledger right once the batch is delivered again.
func countFirstSeen(ctx context.Context, conn driver.Conn, records []Record, seen *seenFilter) error {
	batch := make([]Sighting, len(records))
	for i, r := range records {
		batch[i] = SightingOf(r)
	}
	current, err := firstDays(ctx, conn, batch, seen)
	if err != nil {
		return err
	}
	ts := Transitions(current, batch)
	seen.remember(ts)
	return insertLedger(ctx, conn, ts, NewestOf(batch))
}

// lookupChunk bounds the residents one ledger query names. They travel as
// one bound parameter (34 bytes each, in the request's URL over HTTP, where
// servers accept 1 MiB), not as SQL text: the engine parses a list of
// literals as an expression per resident, which cost several times the read
// itself.
const lookupChunk = 5000

// firstDays reads the first day of each counted resident of batch that the
// ledger holds: the earliest day whose rows add up to more than 0. The
// residents that filter knows to be new are not looked up.
func firstDays(ctx context.Context, conn driver.Conn, batch []Sighting, filter *seenFilter) (map[Counted]time.Time, error) {
	type typeYear struct {
		typ  string
		year uint16
	}
	seen := map[ledgerKey]bool{}
	residents := map[typeYear][]string{}
	var order []typeYear
	for _, s := range batch {
		ty := typeYear{s.Type, s.Year}
		key := ledgerKey{s.Type, s.Year, s.Resident}
		if seen[key] {
			continue
		}
		seen[key] = true
		if filter.certainlyNew(key) {
			continue
		}
		if residents[ty] == nil {
			order = append(order, ty)
		}
		residents[ty] = append(residents[ty], hex.EncodeToString(s.Resident[:]))
	}
	out := make(map[Counted]time.Time, len(seen))
	for _, ty := range order {
		rs := residents[ty]
		for from := 0; from < len(rs); from += lookupChunk {
			if err := readFirstDays(ctx, conn, ty.typ, ty.year, rs[from:min(from+lookupChunk, len(rs))], out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// readFirstDays adds to out the first days of residents (hex) of typ in
// year, in one query on the ledger's primary key.
func readFirstDays(ctx context.Context, conn driver.Conn, typ string, year uint16, residents []string, out map[Counted]time.Time) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
		"type":      typ,
		"year":      strconv.Itoa(int(year)),
		"residents": "['" + strings.Join(residents, "','") + "']",
	}), clickhouse.WithSettings(clickhouse.Settings{
		// A batch waits for this read: it runs at the writes' priority,
		// where the embedded warehouse lets other reads yield (README,
		// "Readers' threads").
		"os_thread_priority": 0,
	}))
	const sql = `SELECT type, year, toString(province_code), toString(city_code), resident, min(day) FROM (
			SELECT type, year, province_code, city_code, resident, day FROM ikd.first_seen
			WHERE type = {type:String} AND year = {year:UInt16}
			  AND resident IN (SELECT toFixedString(unhex(arrayJoin({residents:Array(String)})), 16))
			GROUP BY type, year, province_code, city_code, resident, day
			HAVING sum(sign) > 0)
		GROUP BY type, year, province_code, city_code, resident`
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("read the first-seen ledger for %d residents: %w", len(residents), err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Counted
		var resident string
		var day time.Time
		if err := rows.Scan(&c.Type, &c.Year, &c.Province, &c.City, &resident, &day); err != nil {
			return fmt.Errorf("read the first-seen ledger: %w", err)
		}
		copy(c.Resident[:], resident)
		out[c] = day
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the first-seen ledger: %w", err)
	}
	return nil
}

// insertLedger writes ts and newest as one block, with a token that makes
// an identical retry change nothing.
func insertLedger(ctx context.Context, conn driver.Conn, ts []Transition, newest []Newest) error {
	if len(ts)+len(newest) == 0 {
		return nil
	}
	// The settings replace the events insert's, so the ledger's own are
	// given whole: on a cluster the next batch's lookup must find these rows
	// on their shard, not queued on this node.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplication_token":    ledgerToken(ts, newest),
		"distributed_foreground_insert": 1,
	}))
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign, last_at)")
	if err != nil {
		return fmt.Errorf("prepare the first-seen ledger's %d rows: %w", len(ts)+len(newest), err)
	}
	for _, t := range ts {
		// A transition carries no time: the column's default, the epoch.
		if err := batch.Append(t.Type, t.Year, string(t.Resident[:]), t.Province, t.City, t.Day, t.Sign, time.UnixMilli(0)); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append a first-seen row: %w", err)
		}
	}
	var nobody ResidentKey
	for _, n := range newest {
		if err := batch.Append(n.Type, n.Year, string(nobody[:]), n.Province, n.City, n.Day, int8(0), n.At); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append a first-seen row: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert the first-seen ledger's %d rows: %w", len(ts)+len(newest), err)
	}
	return nil
}
