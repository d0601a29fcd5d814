package spool

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// Sender puts events on the broker and returns once it acknowledged them all,
// or with an error; *publish.Publisher is one.
type Sender interface {
	Publish(ctx context.Context, evs []events.Event) (publish.Result, error)
}

const (
	// maxBatch bounds one Publish: large enough to keep the broker busy,
	// small enough that a failed batch is cheap to send again.
	maxBatch = 1024

	// While the broker is unreachable, tries start quick, for a blip, and
	// settle at one every few seconds, for an outage.
	retryInitial = 200 * time.Millisecond
	retryMax     = 5 * time.Second
)

// forwarder is Run's state: the segment file it reads.
type forwarder struct {
	s    *Spool
	pub  Sender
	file *os.File // open segment being read
	seg  uint64   // number of file
}

func (f *forwarder) run(ctx context.Context) error {
	defer f.closeFile()
	for {
		evs, end, n, err := f.read()
		if err != nil {
			return fmt.Errorf("spool %s: %w", f.s.dir, err)
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-f.s.notify:
			}
			continue
		}
		if err := f.forward(ctx, evs); err != nil {
			return err
		}
		if err := f.s.commit(end, n); err != nil {
			return fmt.Errorf("spool %s: %w", f.s.dir, err)
		}
	}
}

// read returns up to maxBatch durable entries from the cursor on, where they
// end, and their size on disk.
func (f *forwarder) read() ([]events.Event, position, int64, error) {
	pos, limit := f.s.cursor, f.s.durableEnd()
	var evs []events.Event
	var size int64
	for len(evs) < maxBatch && pos.before(limit) {
		r, err := f.reader(pos, limit)
		if err != nil {
			return nil, pos, 0, err
		}
		for len(evs) < maxBatch {
			payload, err := readRecord(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, pos, 0, fmt.Errorf("read %s: %w", pos, err)
			}
			ev, err := decode(payload)
			if err != nil {
				return nil, pos, 0, fmt.Errorf("read %s: %w", pos, err)
			}
			evs = append(evs, ev)
			n := headerBytes + int64(len(payload))
			pos.off += n
			size += n
		}
		switch {
		case len(evs) == maxBatch:
		case pos.seg < limit.seg:
			// A segment before the limit's is complete: past its end is the next.
			pos = position{seg: pos.seg + 1}
		case pos.before(limit):
			return nil, pos, 0, fmt.Errorf("read %s: segment ends before %s, which was synced", pos, limit)
		}
	}
	return evs, pos, size, nil
}

// reader reads segment pos.seg from pos.off up to limit, or to its end when
// it is not limit's segment.
func (f *forwarder) reader(pos, limit position) (*bufio.Reader, error) {
	if f.file == nil || f.seg != pos.seg {
		f.closeFile()
		file, err := os.Open(segmentPath(f.s.dir, pos.seg))
		if err != nil {
			return nil, err
		}
		f.file, f.seg = file, pos.seg
	}
	n := int64(math.MaxInt64) - pos.off
	if pos.seg == limit.seg {
		n = limit.off - pos.off
	}
	return bufio.NewReaderSize(io.NewSectionReader(f.file, pos.off, n), 64<<10), nil
}

func (f *forwarder) closeFile() {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
}

// forward publishes evs, retrying with backoff until the broker acknowledged
// them all; it gives up only when ctx ends. A resend of events the broker
// already stored is harmless: they are dropped as duplicates.
func (f *forwarder) forward(ctx context.Context, evs []events.Event) error {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(retryInitial),
		backoff.WithMaxInterval(retryMax),
		backoff.WithRandomizationFactor(0.5),
		// An outage may last hours; the spool is there to wait it out.
		backoff.WithMaxElapsedTime(0))
	op := func() error {
		_, err := f.pub.Publish(ctx, evs)
		return err
	}
	notify := func(err error, wait time.Duration) {
		f.s.logger.Warn("cannot forward spooled events; keeping them and trying again",
			"events", len(evs), "pending_bytes", f.s.Pending(), "retry_in", wait, "err", err)
	}
	if err := backoff.RetryNotify(op, backoff.WithContext(b, ctx), notify); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("spool %s: forward: %w", f.s.dir, err)
	}
	return nil
}

// durableEnd returns the end of what Append has fsynced.
func (s *Spool) durableEnd() position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// commit records that everything before end, n bytes since the cursor, was
// acknowledged, then removes the segments that lie wholly behind it.
func (s *Spool) commit(end position, n int64) error {
	if err := writeCursor(s.dir, end); err != nil {
		return err
	}
	from := s.cursor.seg
	s.cursor = end
	s.mu.Lock()
	s.used -= n
	s.mu.Unlock()
	for seg := from; seg < end.seg; seg++ {
		// A segment left behind is removed by the next Open.
		if err := os.Remove(segmentPath(s.dir, seg)); err != nil {
			s.logger.Warn("cannot remove a forwarded segment", "err", err)
		}
	}
	return nil
}
