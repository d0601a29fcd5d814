package warehouse

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/retry"
)

// ledgerKey is what the ledger is looked up by: a resident of one type and
// year, whatever the city.
type ledgerKey struct {
	typ      string
	year     uint16
	resident ResidentKey
}

// seenFilter is a Bloom filter of the ledger's keys. Most residents a batch
// brings are new to the ledger (a resident activates once a year), and the
// filter says so for all but about one in a hundred of them at its sizing, so
// that only the rest are looked up: a point read of the ledger costs about
// 0.1 ms a resident when it holds a nation's year (README, "The ledger's
// filter"). It never answers "new" for a key it was given, so a key in the
// ledger is never counted again as long as every key of the ledger was
// given to it (load and add). Safe for concurrent use.
type seenFilter struct {
	words []atomic.Uint64
	// blocks is the number of blocks less one, a power of two.
	blocks uint64
	// from is the first year it covers; earlier years are looked up.
	from uint16
	// ready is set once every key the ledger held when the filter was
	// made has been loaded; until then every key is looked up.
	ready atomic.Bool
}

// filterHashes is how many bits a key sets: the best for 10 bits a key.
const filterHashes = 7

// blockWords is a block of the filter, a 64-byte cache line: every bit of a
// key falls in one block, so that asking for a key or adding one reads one
// line of memory, not seven (a blocked Bloom filter; at 10 bits a key it
// answers "maybe" for a few more new keys than a plain one, about 1 in 100).
const blockWords = 8

// filterLen is how many words a filter of at most size bytes has: a power
// of two, at least one block.
func filterLen(size int) int { return 1 << (bits.Len(uint(max(size, 8*blockWords)/8)) - 1) }

// newSeenFilter makes a filter over words (cleared, filterLen of them),
// covering the years from on.
func newSeenFilter(words []atomic.Uint64, from uint16) *seenFilter {
	return &seenFilter{words: words, blocks: uint64(len(words)/blockWords - 1), from: from}
}

// hashes returns the two hashes of a key: one picks its block, the other
// its bits in the block, nine bits of it for each. Residents are digests
// already, so their bytes serve, salted with the type and year so that one
// resident's keys of two years fall apart.
func (k ledgerKey) hashes() (block, inBlock uint64) {
	salt := uint64(k.year) * 0x9e3779b97f4a7c15
	for i := 0; i < len(k.typ); i++ {
		salt = (salt ^ uint64(k.typ[i])) * 0x100000001b3
	}
	return binary.LittleEndian.Uint64(k.resident[:8]) ^ salt, binary.LittleEndian.Uint64(k.resident[8:]) ^ bits.RotateLeft64(salt, 32)
}

// bit returns the word and the mask of a key's i-th bit.
func (f *seenFilter) bit(block, inBlock uint64, i int) (*atomic.Uint64, uint64) {
	pos := inBlock >> (9 * i) & 511
	return &f.words[(block&f.blocks)*blockWords+pos/64], 1 << (pos % 64)
}

func (f *seenFilter) add(k ledgerKey) {
	block, inBlock := k.hashes()
	for i := range filterHashes {
		w, m := f.bit(block, inBlock, i)
		w.Or(m)
	}
}

func (f *seenFilter) mayHold(k ledgerKey) bool {
	block, inBlock := k.hashes()
	for i := range filterHashes {
		if w, m := f.bit(block, inBlock, i); w.Load()&m == 0 {
			return false
		}
	}
	return true
}

// certainlyNew reports whether the ledger cannot hold k. A nil filter knows
// nothing.
func (f *seenFilter) certainlyNew(k ledgerKey) bool {
	return f != nil && f.ready.Load() && k.year >= f.from && !f.mayHold(k)
}

// remember adds the keys of ts that f covers; a nil filter ignores them.
// Called before the rows are inserted: a key that then fails to land only
// costs a lookup.
func (f *seenFilter) remember(ts []Transition) {
	if f == nil {
		return
	}
	for _, t := range ts {
		if t.Year >= f.from {
			f.add(ledgerKey{t.Type, t.Year, t.Resident})
		}
	}
}

// loadChunk bounds the keys one read of the load returns: the embedded
// warehouse holds a result whole before sending it.
const loadChunk = 1 << 18

// load adds every key the ledger holds for the years f covers, then marks f
// ready. The keys written meanwhile are added by the writer before it writes
// them, so none is missed whichever read sees them. It returns how many
// keys it read.
func (f *seenFilter) load(ctx context.Context, conn driver.Conn) (uint64, error) {
	type typeYear struct {
		typ  string
		year uint16
		keys uint64
	}
	rows, err := conn.Query(ctx, `SELECT toString(type), year, toUInt64(count()) FROM ikd.first_seen
		WHERE year >= ? AND sign != 0 GROUP BY type, year ORDER BY type, year`, f.from)
	if err != nil {
		return 0, fmt.Errorf("list the ledger's years: %w", err)
	}
	var parts []typeYear
	for rows.Next() {
		var p typeYear
		if err := rows.Scan(&p.typ, &p.year, &p.keys); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list the ledger's years: %w", err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list the ledger's years: %w", err)
	}
	var read uint64
	for _, p := range parts {
		for _, r := range residentRanges(p.keys) {
			n, err := f.loadRange(ctx, conn, p.typ, p.year, r)
			if err != nil {
				return read, fmt.Errorf("load the ledger's %s keys of %d: %w", p.typ, p.year, err)
			}
			read += n
		}
	}
	f.ready.Store(true)
	return read, nil
}

// residentRange is a slice of the residents by their first byte: from lo up
// to hi, excluded; hi 256 is the end.
type residentRange struct{ lo, hi int }

// residentRanges splits the residents into as few equal slices by first
// byte as keep each under loadChunk of keys (residents are digests, spread
// evenly).
func residentRanges(keys uint64) []residentRange {
	n := 1
	for n < 256 && keys/uint64(n) > loadChunk {
		n *= 2
	}
	out := make([]residentRange, n)
	for i := range out {
		out[i] = residentRange{lo: i * 256 / n, hi: (i + 1) * 256 / n}
	}
	return out
}

func (f *seenFilter) loadRange(ctx context.Context, conn driver.Conn, typ string, year uint16, r residentRange) (uint64, error) {
	// Rows of sign 0 count no one (the newest times).
	sql := `SELECT resident FROM ikd.first_seen WHERE type = ? AND year = ? AND sign != 0 AND resident >= toFixedString(unhex(?), 16)`
	args := []any{typ, year, fmt.Sprintf("%02x", r.lo)}
	if r.hi < 256 {
		sql += ` AND resident < toFixedString(unhex(?), 16)`
		args = append(args, fmt.Sprintf("%02x", r.hi))
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		var resident string
		if err := rows.Scan(&resident); err != nil {
			return n, err
		}
		k := ledgerKey{typ: typ, year: year}
		copy(k.resident[:], resident)
		f.add(k)
		n++
	}
	return n, rows.Err()
}

// FilterConfig makes an EventWriter keep a filter of the ledger's keys
// (seenFilter) while it is the only writer.
type FilterConfig struct {
	// Bytes is the filter's size; 0 keeps none. 64 MiB holds a nation's
	// year (55 million keys) at about 1 % of new residents looked up.
	Bytes int
	// Now gives the current year, the first the filter covers: last
	// year's late events are few, and are looked up.
	Now    func() time.Time
	Logger *slog.Logger
}

// Begin starts a new filter, loaded from the ledger in the background,
// which serves the writes from then on; the channel gets the load's outcome.
// Call it each time the writer becomes the only one (the aggregator when it
// takes the lease), before it writes and never while it writes: what another
// writer wrote before then is loaded, and nothing may be written by another
// after. The load is tried again until ctx ends; until it succeeds every
// resident is looked up.
func (w *EventWriter) Begin(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	if w.filter.Bytes <= 0 {
		done <- nil
		return done
	}
	now, logger := w.filter.Now, w.filter.Logger
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The words are the writer's for its life, cleared for each filter: a
	// previous load still running can only add bits, which cost lookups.
	w.seen.Store(nil)
	if w.words == nil {
		words, err := filterWords(filterLen(w.filter.Bytes))
		if err != nil {
			logger.Warn("no filter of the ledger's keys; looking every resident up", "err", err)
			done <- err
			return done
		}
		w.words = words
	} else {
		for i := range w.words {
			w.words[i].Store(0)
		}
	}
	f := newSeenFilter(w.words, uint16(now().In(wib).Year()))
	w.seen.Store(f)
	go func() {
		started := time.Now()
		var keys uint64
		policy := retry.Policy{Initial: time.Second, Max: time.Minute, Jitter: 0.5}
		err := retry.Do(ctx, policy, func() (err error) {
			keys, err = f.load(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 0})), w.conn)
			return err
		}, func(error) bool { return true }, func(err error, wait time.Duration) {
			logger.Warn("could not load the ledger's filter; looking every resident up meanwhile", "retry_in", wait.Round(time.Second), "err", err)
		})
		if err == nil {
			logger.Info("ledger filter loaded", "keys", keys, "from_year", f.from, "bytes", len(f.words)*8, "took", time.Since(started).Round(time.Millisecond))
		}
		done <- err
	}()
	return done
}
