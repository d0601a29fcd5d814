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

// Counted is what the ledger counts a resident once for: one type of event
// in one year.
type Counted struct {
	Type     string
	Year     uint16
	Resident ResidentKey
}

// Place is where and when a resident was first seen. Places are ordered by
// day, then city, then province, so that the first place of a resident is
// the same whatever order their events arrive in.
type Place struct {
	Day      time.Time // midnight UTC of the WIB date, as the warehouse returns a Date
	City     string
	Province string
}

func comparePlaces(a, b Place) int {
	if c := a.Day.Compare(b.Day); c != 0 {
		return c
	}
	if c := cmp.Compare(a.City, b.City); c != 0 {
		return c
	}
	return cmp.Compare(a.Province, b.Province)
}

// Sighting is one event as the ledger sees it.
type Sighting struct {
	Counted
	Place
}

// SightingOf returns the sighting of an accepted event.
func SightingOf(r Record) Sighting {
	at := r.OccurredAt.In(wib)
	return Sighting{
		Counted: Counted{Type: string(r.Type), Year: uint16(at.Year()), Resident: KeyOf(r.Resident)},
		Place:   Place{Day: time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC), City: r.CityCode, Province: r.ProvinceCode},
	}
}

// Transition is one signed row of the ledger.
type Transition struct {
	Counted
	Place
	Sign int8
}

// Transitions returns the rows that bring the ledger from current (each
// counted resident's first place so far; absent when never seen) to include
// the batch's sightings: +1 at a new resident's first place; -1 at the old
// place and +1 at the new one when the batch holds an earlier place; nothing
// when it holds none. The result is sorted, so that the same batch over the
// same ledger gives the same rows.
func Transitions(current map[Counted]Place, batch []Sighting) []Transition {
	first := map[Counted]Place{}
	for _, s := range batch {
		if p, ok := first[s.Counted]; !ok || comparePlaces(s.Place, p) < 0 {
			first[s.Counted] = s.Place
		}
	}
	var out []Transition
	for c, p := range first {
		old, seen := current[c]
		switch {
		case !seen:
			out = append(out, Transition{Counted: c, Place: p, Sign: 1})
		case comparePlaces(p, old) < 0:
			out = append(out, Transition{Counted: c, Place: old, Sign: -1}, Transition{Counted: c, Place: p, Sign: 1})
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
	return cmp.Compare(a.Sign, b.Sign)
}

// transitionsToken is the insert's deduplication token, derived from the rows
// themselves: the same rows are only ever right once (a resident's first
// place only moves earlier), so a retry of an insert that landed is dropped.
func transitionsToken(ts []Transition) string {
	h := sha256.New()
	var buf [2]byte
	for _, t := range ts {
		h.Write([]byte(t.Type))
		binary.BigEndian.PutUint16(buf[:], t.Year)
		h.Write(buf[:])
		h.Write(t.Resident[:])
		h.Write([]byte(t.Day.Format(time.DateOnly) + "\x00" + t.City + "\x00" + t.Province + "\x00"))
		h.Write([]byte{byte(t.Sign)})
	}
	return "first-seen-" + hex.EncodeToString(h.Sum(nil))
}

// countFirstSeen brings the ledger up to date with records, already written
// to ikd.events: it reads the first place of the batch's residents (one
// query on the ledger's primary key), and inserts the transitions. Run by
// the single active writer; see README, "Exactly once", for why a crash at
// any point leaves the ledger right once the batch is delivered again.
func countFirstSeen(ctx context.Context, conn driver.Conn, records []Record) error {
	batch := make([]Sighting, len(records))
	for i, r := range records {
		batch[i] = SightingOf(r)
	}
	current, err := firstPlaces(ctx, conn, batch)
	if err != nil {
		return err
	}
	return insertTransitions(ctx, conn, Transitions(current, batch))
}

// firstPlaces reads the first place of each counted resident of batch that
// the ledger holds: the earliest place where its rows add up to more than 0.
func firstPlaces(ctx context.Context, conn driver.Conn, batch []Sighting) (map[Counted]Place, error) {
	keys := map[Counted]bool{}
	var in strings.Builder
	for _, s := range batch {
		if keys[s.Counted] {
			continue
		}
		if len(keys) > 0 {
			in.WriteByte(',')
		}
		keys[s.Counted] = true
		// Type codes are the contract's enum values; quoted all the same.
		fmt.Fprintf(&in, "(%s,%d,unhex('%x'))", quoteString(s.Type), s.Year, s.Resident[:])
	}
	sql := `SELECT type, year, resident, p.1, toString(p.2), toString(p.3) FROM (
		SELECT type, year, resident, min((day, city_code, province_code)) AS p FROM (
			SELECT type, year, resident, day, city_code, province_code FROM ikd.first_seen
			WHERE (type, year, resident) IN (` + in.String() + `)
			GROUP BY type, year, resident, day, city_code, province_code
			HAVING sum(sign) > 0)
		GROUP BY type, year, resident)`
	// Ten thousand residents make a query of about 600 KB.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_query_size": 16 << 20}))
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("read the first-seen ledger for %d residents: %w", len(keys), err)
	}
	defer rows.Close()
	out := make(map[Counted]Place, len(keys))
	for rows.Next() {
		var c Counted
		var resident string
		var p Place
		if err := rows.Scan(&c.Type, &c.Year, &resident, &p.Day, &p.City, &p.Province); err != nil {
			return nil, fmt.Errorf("read the first-seen ledger: %w", err)
		}
		copy(c.Resident[:], resident)
		out[c] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the first-seen ledger: %w", err)
	}
	return out, nil
}

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// insertTransitions writes ts as one block, with a token that makes an
// identical retry change nothing.
func insertTransitions(ctx context.Context, conn driver.Conn, ts []Transition) error {
	if len(ts) == 0 {
		return nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplication_token": transitionsToken(ts),
	}))
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign)")
	if err != nil {
		return fmt.Errorf("prepare the first-seen ledger's %d rows: %w", len(ts), err)
	}
	for _, t := range ts {
		if err := batch.Append(t.Type, t.Year, string(t.Resident[:]), t.Province, t.City, t.Day, t.Sign); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append a first-seen row: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert the first-seen ledger's %d rows: %w", len(ts), err)
	}
	return nil
}
