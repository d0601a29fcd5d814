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
	"github.com/ikd-pipeline/ikd/internal/retry"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// Sender puts events on the broker and returns once it acknowledged them all,
// or with an error; *publish.Publisher is one. An error that names the events
// that failed is a *publish.Error; any other error concerns the whole call.
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

// forwarder is Run's state: the segment file it reads, and how the last
// attempts went.
type forwarder struct {
	s         *Spool
	pub       Sender
	file      *os.File // open segment being read
	seg       uint64   // number of file
	batchSize int      // events per Publish; narrowed to isolate a refused event

	retry  backoff.BackOff // between attempts while the broker is unreachable
	failed int             // attempts failed since the last success
	since  time.Time       // when the first of them failed
}

func newForwarder(s *Spool, pub Sender) *forwarder {
	return &forwarder{s: s, pub: pub, batchSize: maxBatch, retry: forwardPolicy.BackOff()}
}

// forwardPolicy never gives up: an outage may last hours, and the spool is
// there to wait it out.
var forwardPolicy = retry.Policy{Initial: retryInitial, Max: retryMax, Jitter: 0.5}

func (f *forwarder) run(ctx context.Context) error {
	defer f.closeFile()
	for {
		b, err := f.read()
		if err != nil {
			return fmt.Errorf("spool %s: %w", f.s.dir, err)
		}
		if len(b.evs) == 0 {
			f.batchSize = maxBatch
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-f.s.notify:
			}
			continue
		}
		f.s.sawHead(b.evs[0])
		if err := f.forward(ctx, b); err != nil {
			return err
		}
	}
}

// batch is what one read found: the events and their records' payloads,
// where each record ends and the bytes on disk up to it, and where the next
// read starts (past the last record, or at the next segment).
type batch struct {
	evs      []events.Event
	payloads [][]byte
	ends     []position
	sizes    []int64
	end      position
}

// size is the bytes on disk of b's records.
func (b batch) size() int64 {
	if len(b.sizes) == 0 {
		return 0
	}
	return b.sizes[len(b.sizes)-1]
}

// prefix is the first n events of b.
func (b batch) prefix(n int) batch {
	switch {
	case n >= len(b.evs):
		return b
	case n <= 0:
		return batch{}
	}
	return batch{evs: b.evs[:n], payloads: b.payloads[:n], ends: b.ends[:n], sizes: b.sizes[:n], end: b.ends[n-1]}
}

// read returns up to batchSize durable entries from the cursor on.
func (f *forwarder) read() (batch, error) {
	pos, limit := f.s.cursor, f.s.durableEnd()
	var b batch
	for len(b.evs) < f.batchSize && pos.before(limit) {
		r, err := f.reader(pos, limit)
		if err != nil {
			return batch{}, err
		}
		for len(b.evs) < f.batchSize {
			payload, err := readRecord(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				return batch{}, fmt.Errorf("read %s: %w", pos, err)
			}
			ev, err := decode(payload)
			if err != nil {
				return batch{}, fmt.Errorf("read %s: %w", pos, err)
			}
			b.evs, b.payloads = append(b.evs, ev), append(b.payloads, payload)
			n := headerBytes + int64(len(payload))
			pos.off += n
			b.ends, b.sizes = append(b.ends, pos), append(b.sizes, b.size()+n)
		}
		switch {
		case len(b.evs) == f.batchSize:
		case pos.seg < limit.seg:
			// A segment before the limit's is complete: past its end is the next.
			pos = position{seg: pos.seg + 1}
		case pos.before(limit):
			return batch{}, fmt.Errorf("read %s: segment ends before %s, which was synced", pos, limit)
		}
	}
	b.end = pos
	return b, nil
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

// forward makes one attempt at b. The cursor moves past the events the
// broker took, or refused for good, which are then set aside, up to the
// first that failed for a passing reason; from there the next attempt, after
// a wait, reads again with what was appended since. A resend of events the
// broker already stored is harmless: they are dropped as duplicates.
func (f *forwarder) forward(ctx context.Context, b batch) error {
	res, err := f.pub.Publish(ctx, b.evs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	o := judge(b.evs, res, err)
	if o.split {
		f.batchSize = max(len(b.evs)/2, 1)
		return nil
	}
	if err := f.settle(b.prefix(o.settled), o.refused); err != nil {
		return fmt.Errorf("spool %s: %w", f.s.dir, err)
	}
	f.s.linkIs(o.retry)
	if o.retry != nil {
		return f.wait(ctx, len(b.evs)-o.settled, o.retry)
	}
	f.recovered()
	return nil
}

// settle sets aside the refused events of b and moves the cursor past b.
func (f *forwarder) settle(b batch, refused map[string]error) error {
	if len(b.evs) == 0 {
		return nil
	}
	if err := f.s.setAside(b, refused); err != nil {
		return err
	}
	if len(refused) > 0 {
		f.batchSize = maxBatch
	}
	if err := f.s.commit(b.end); err != nil {
		return err
	}
	aside := 0
	for _, ev := range b.evs {
		if _, ok := refused[ev.EventID]; ok {
			aside++
		}
	}
	f.s.acknowledged(len(b.evs), aside, b.size())
	return nil
}

// wait pauses after a failed attempt. An outage is logged when it starts and
// when it ends, not at every attempt, since it may last hours.
func (f *forwarder) wait(ctx context.Context, n int, cause error) error {
	delay := f.retry.NextBackOff()
	if f.failed == 0 {
		f.since = time.Now()
		f.s.logger.Warn("cannot forward spooled events; keeping them on disk and retrying until the broker takes them",
			"events", n, "pending_bytes", f.s.Pending(), "err", cause)
	} else {
		f.s.logger.Debug("still cannot forward spooled events", "attempt", f.failed+1, "retry_in", delay, "err", cause)
	}
	f.failed++
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// recovered logs the end of an outage, if there was one.
func (f *forwarder) recovered() {
	if f.failed == 0 {
		return
	}
	f.s.logger.Info("forwarding spooled events again",
		"failed_attempts", f.failed, "outage", time.Since(f.since).Round(time.Millisecond), "pending_bytes", f.s.Pending())
	f.failed = 0
	f.retry.Reset()
}

// durableEnd returns the end of what Append has fsynced.
func (s *Spool) durableEnd() position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// commit records that everything before end was acknowledged, then removes
// the segments that lie wholly behind it.
func (s *Spool) commit(end position) error {
	if err := writeCursor(s.dir, end); err != nil {
		return err
	}
	from := s.cursor.seg
	s.cursor = end
	for seg := from; seg < end.seg; seg++ {
		// A segment left behind is removed by the next Open.
		if err := os.Remove(segmentPath(s.dir, seg)); err != nil {
			s.logger.Warn("cannot remove a forwarded segment", "err", err)
		}
	}
	return nil
}
