package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// Record is an accepted event and its position in the source stream, kept
// so that the warehouse can be reconciled with the broker.
type Record struct {
	events.Event
	Seq uint64
}

// EventWriter writes accepted events into ikd.events and counts their
// residents in the first-seen ledger, from which the views read.
type EventWriter struct {
	conn   driver.Conn
	filter FilterConfig
	// seen is the filter of the ledger's keys since Begin; nil before.
	seen  atomic.Pointer[seenFilter]
	words []atomic.Uint64 // seen's, kept from one Begin to the next
}

// NewEventWriter writes through conn, looking every resident up in the
// ledger.
func NewEventWriter(conn driver.Conn) *EventWriter { return &EventWriter{conn: conn} }

// NewFilteredEventWriter writes through conn, and from each Begin on looks
// up only the residents that its filter of the ledger's keys may hold.
func NewFilteredEventWriter(conn driver.Conn, filter FilterConfig) *EventWriter {
	return &EventWriter{conn: conn, filter: filter}
}

// Write inserts records as one block, then counts their residents in the
// first-seen ledger (countFirstSeen); the batch is stored only when both
// succeeded. A retry of the same records is dropped by the warehouse (the
// block's deduplication token is derived from its event ids), and any other
// replay finds its residents already counted. Only one writer may write at a
// time: two at once could both find a resident new.
func (w *EventWriter) Write(ctx context.Context, records []Record) error {
	if len(records) == 0 {
		return nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_deduplication_token": dedupToken(records),
		// On a cluster ikd.events is Distributed: the insert returns once
		// every shard has its rows, not when they are queued on this node,
		// so that an acknowledged event is on its shard's replicas.
		"distributed_foreground_insert": 1,
	}))
	batch, err := w.conn.PrepareBatch(ctx, "INSERT INTO ikd.events (event_id, type, resident, key_id, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)")
	if err != nil {
		return fmt.Errorf("prepare insert of %d events: %w", len(records), err)
	}
	for _, r := range records {
		err := batch.Append(r.EventID, string(r.Type), r.Resident, r.KeyID, r.ProvinceCode, r.CityCode, r.DistrictCode,
			r.OfficeID, string(r.Channel), r.OccurredAt, r.Seq)
		if err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append event %s: %w", r.EventID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d events (seq %d-%d): %w", len(records), records[0].Seq, records[len(records)-1].Seq, err)
	}
	if err := countFirstSeen(ctx, w.conn, records, w.seen.Load()); err != nil {
		return fmt.Errorf("count the residents of %d events (seq %d-%d): %w", len(records), records[0].Seq, records[len(records)-1].Seq, err)
	}
	return nil
}

func dedupToken(records []Record) string {
	ids := make([]string, len(records))
	for i, r := range records {
		ids[i] = r.EventID
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return "events-" + hex.EncodeToString(h.Sum(nil))
}
