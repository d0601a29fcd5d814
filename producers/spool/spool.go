// Package spool keeps a counter's events on its own disk while the link to the
// broker is down, and forwards them, in the order they were appended, once it
// is back.
//
// The spool is a directory of append-only segment files of framed records
// (length, CRC-32C, the event's JSON) and a cursor file that says how far the
// broker has acknowledged. Append returns only after the record is fsynced,
// so an event it accepted survives a crash; a crash in the middle of a write
// leaves a torn record at the end of the last segment, which Open detects by
// its length or checksum and cuts off. Forwarded entries are removed only after
// the broker's ack, so a crash between the ack and the cursor's update sends
// them again: the broker drops such resends by their Nats-Msg-Id (the event
// id) within its duplicate window, and a resend arriving after the window is
// absorbed by the warehouse, which counts events and residents as sets.
//
// When the spool is full, Append refuses new events with ErrFull rather than
// dropping old ones: an event that was accepted is never lost.
//
// While the broker is unreachable, restarting or slow, Run keeps every event
// and retries with backoff, logging when the outage starts and when it ends.
// An event the broker refuses for good (larger than the stream allows, a
// subject no stream takes, any other error that is not the link's) would
// block the events behind it forever, so Run moves it out of the queue into
// the file rejected.jsonl (RejectedFile) in the spool's directory, logs it
// once, and forwards the rest. Each line of that file is a Rejection: when,
// the broker's reason, the event id, the subject and the record as spooled,
// which a person can inspect and republish with the event id as its
// Nats-Msg-Id. "No response from stream" is an outage (a broker whose streams
// are not up yet) unless the broker acknowledged other events of the same
// call, which shows that no stream takes that subject. A crash between
// writing a line and moving the cursor may write the line twice.
package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/private"
)

// ErrFull is returned by Append when the event would take the undelivered
// entries past the spool's limit.
var ErrFull = errors.New("spool full")

// errClosed is returned by Append after Close.
var errClosed = errors.New("spool closed")

const (
	lockName = "LOCK"

	// Segments are a fraction of the limit, so that the delivered part of the
	// last segment, which stays on disk until the segment is full, is a small
	// overshoot of it.
	segmentsPerLimit = 8
	minSegmentBytes  = 4 << 10
	maxSegmentBytes  = 64 << 20
)

// Spool is a durable queue of events in a directory. Append may be called
// from several goroutines; Run from one at a time.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	logger   *slog.Logger
	lock     *os.File // holds the directory's flock
	notify   chan struct{}

	mu      sync.Mutex
	synced  *sync.Cond // signalled when a sync ends
	w       *os.File   // the last segment, open for appending
	wEnd    position   // where the next record goes
	durable position   // everything before it is fsynced
	syncing bool       // an Append is running fsync without mu
	used    int64      // bytes of undelivered records, framing included
	waiting int        // undelivered records
	syncs   int64      // fsyncs of appends since Open, for Stats
	oldest  time.Time  // when the first undelivered record was received, if known
	link    linkState  // how forwarding went, for Stats
	broken  error      // set on a write or sync error, or by Close

	cursor position // owned by Run: everything before it was acknowledged
}

// Open opens the spool in dir, creating dir if needed, and finds again the
// entries that were not forwarded before the last Close or crash. maxBytes
// bounds the undelivered entries. Only one process may have a spool open.
func Open(dir string, maxBytes int64, logger *slog.Logger) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("spool %s: limit must be positive, got %d bytes", dir, maxBytes)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The spool is the office's record of its events: its user's alone.
	if err := private.Dir(dir); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		dir:      dir,
		maxBytes: maxBytes,
		segBytes: min(max(maxBytes/segmentsPerLimit, minSegmentBytes), maxSegmentBytes),
		logger:   logger.With("component", "spool", "dir", dir),
		lock:     lock,
		notify:   make(chan struct{}, 1),
	}
	s.synced = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		lock.Close() // releases the flock
		return nil, err
	}
	return s, nil
}

// lockDir takes an exclusive flock on dir, because two processes appending to
// the same segments would corrupt them.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s: in use by another process: %w", dir, err)
	}
	return f, nil
}

// Append records ev durably: when it returns nil, the event is on disk. It
// returns an error wrapping ErrFull when the spool has no room.
func (s *Spool) Append(ev events.Event) error {
	_, err := s.AppendAll([]events.Event{ev})
	return err
}

// AppendAll records evs durably, in order, with one fsync for all of them,
// and returns how many it recorded: a prefix of evs, all of them when err is
// nil. Those it recorded are on disk even when err is not nil. It stops at
// the first that does not fit, with an error wrapping ErrFull, when the
// spool's limit is reached or its disk is full.
func (s *Spool) AppendAll(evs []events.Event) (int, error) {
	recs := make([][]byte, len(evs))
	for i, ev := range evs {
		rec, err := encode(ev)
		if err != nil {
			return 0, fmt.Errorf("spool: event %s: %w", ev.EventID, err)
		}
		recs[i] = rec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, stop := s.write(evs, recs)
	if n > 0 {
		if err := s.syncTo(s.wEnd); err != nil {
			return 0, err
		}
	}
	return n, stop
}

// write appends recs, the records of evs, without syncing, up to the first
// that does not fit; mu is held.
func (s *Spool) write(evs []events.Event, recs [][]byte) (int, error) {
	for i, rec := range recs {
		n := int64(len(rec))
		if err := s.makeRoom(n); err != nil {
			return i, err
		}
		if _, err := s.w.Write(rec); err != nil {
			return i, s.writeFailed(err)
		}
		s.wEnd.off += n
		s.used += n
		if s.waiting == 0 {
			s.oldest = receivedAt(evs[i])
		}
		s.waiting++
	}
	return len(recs), nil
}

// writeFailed handles a failed write; mu is held. A full disk is passing
// trouble: the partial record is cut off and the event refused as when the
// limit is reached, so that the agent takes events again once there is space.
// Any other failure breaks the spool.
func (s *Spool) writeFailed(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		if terr := s.w.Truncate(s.wEnd.off); terr == nil {
			return fmt.Errorf("%w: the disk of %s is full; new events are refused until there is space", ErrFull, s.dir)
		}
	}
	return s.fail(fmt.Errorf("write %s: %w", s.w.Name(), err))
}

// receivedAt is when ev was received, or when it occurred for an event
// spooled without that time.
func receivedAt(ev events.Event) time.Time {
	if !ev.ReceivedAt.IsZero() {
		return ev.ReceivedAt
	}
	return ev.OccurredAt
}

// makeRoom checks that n more bytes fit and starts a new segment when the
// last one is full; mu is held.
func (s *Spool) makeRoom(n int64) error {
	for {
		if s.broken != nil {
			return fmt.Errorf("spool %s: %w", s.dir, s.broken)
		}
		if s.used+n > s.maxBytes {
			return fmt.Errorf("%w: %s holds %d bytes of undelivered events, its limit is %d; new events are refused until the broker takes some",
				ErrFull, s.dir, s.used, s.maxBytes)
		}
		if s.wEnd.off == 0 || s.wEnd.off+n <= s.segBytes {
			return nil
		}
		// The segment being synced must stay open until its sync ends.
		if s.syncing {
			s.synced.Wait()
			continue
		}
		if err := s.rotate(); err != nil {
			return s.fail(err)
		}
	}
}

// syncTo returns once everything before end is fsynced. Appends that arrive
// while one fsync runs share the next: a group commit. mu is held.
func (s *Spool) syncTo(end position) error {
	for s.durable.before(end) {
		if s.broken != nil {
			return fmt.Errorf("spool %s: %w", s.dir, s.broken)
		}
		if s.syncing {
			s.synced.Wait()
			continue
		}
		s.syncing = true
		f, target := s.w, s.wEnd
		s.mu.Unlock()
		err := f.Sync()
		s.mu.Lock()
		s.syncing = false
		if err != nil {
			s.fail(fmt.Errorf("sync %s: %w", f.Name(), err))
		} else {
			s.durable = target
			s.syncs++
			s.wake()
		}
		s.synced.Broadcast()
	}
	return nil
}

// fail breaks the spool for good: after a failed write or fsync, what is on
// disk is unknown until Open reads it again. mu is held.
func (s *Spool) fail(err error) error {
	s.broken = err
	s.logger.Error("spool broken; reopen it to recover", "err", err)
	return fmt.Errorf("spool %s: %w", s.dir, err)
}

// wake tells Run that there is something new to forward.
func (s *Spool) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Close closes the spool's files; call it after Run has returned. Entries not
// yet forwarded stay in the directory for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.syncing {
		s.synced.Wait()
	}
	if s.broken == errClosed {
		return nil
	}
	s.broken = errClosed
	err := s.w.Close()
	s.lock.Close() // releases the flock
	if err != nil {
		return fmt.Errorf("spool %s: close: %w", s.dir, err)
	}
	return nil
}

// Pending returns the number of bytes of undelivered entries.
func (s *Spool) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Run forwards entries to pub in append order until ctx ends, removing them
// after the broker's ack and retrying with backoff while it is unreachable.
// The broker stores them in that order when pub keeps it, as a
// *publish.Publisher with Options.Ordered does; another may store an event
// that had to be resent after the ones behind it. It returns ctx's error, or
// an error if the spool cannot be read.
func (s *Spool) Run(ctx context.Context, pub Sender) error {
	return newForwarder(s, pub).run(ctx)
}
