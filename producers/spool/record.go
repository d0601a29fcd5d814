package spool

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
)

// A record is a little-endian uint32 payload length, the CRC-32C of the
// payload, and the payload, an event's JSON.
const headerBytes = 8

// maxPayloadBytes is far above any event (a few hundred bytes), so a larger
// length can only be a torn or corrupt header.
const maxPayloadBytes = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks a record that is incomplete or fails its checksum.
var errTorn = errors.New("torn or corrupt record")

// stored is a record's payload: the event as the broker carries it and,
// from an office agent, when the agent received it. Records without it, from
// before it existed, read as events received at an unknown time.
type stored struct {
	events.Event
	ReceivedAt *time.Time `json:"received_at,omitempty"`
}

func encode(ev events.Event) ([]byte, error) {
	rec := stored{Event: ev}
	if !ev.ReceivedAt.IsZero() {
		rec.ReceivedAt = &ev.ReceivedAt
	}
	payload, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if len(payload) > maxPayloadBytes {
		return nil, fmt.Errorf("%d bytes encoded, the limit is %d", len(payload), maxPayloadBytes)
	}
	framed := make([]byte, headerBytes, headerBytes+len(payload))
	binary.LittleEndian.PutUint32(framed[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(framed[4:8], crc32.Checksum(payload, castagnoli))
	return append(framed, payload...), nil
}

// readRecord returns the next record's payload, io.EOF at a clean end, or
// errTorn.
func readRecord(r *bufio.Reader) ([]byte, error) {
	var header [headerBytes]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, readError(err)
	}
	n := binary.LittleEndian.Uint32(header[0:4])
	if n == 0 || n > maxPayloadBytes {
		return nil, fmt.Errorf("%w: length %d", errTorn, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, readError(err)
	}
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(header[4:8]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errTorn)
	}
	return payload, nil
}

// readError tells a record cut short, which is torn, from a failing disk,
// which is not.
func readError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: cut short", errTorn)
	}
	return err
}

func decode(payload []byte) (events.Event, error) {
	var rec stored
	if err := json.Unmarshal(payload, &rec); err != nil {
		return events.Event{}, fmt.Errorf("decode spooled event: %w", err)
	}
	ev := rec.Event
	if rec.ReceivedAt != nil {
		ev.ReceivedAt = *rec.ReceivedAt
	}
	return ev, nil
}
