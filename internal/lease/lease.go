// Package lease is a single-writer lease in a NATS KV bucket. One holder at
// a time holds a key that vanishes a TTL after its last renewal; a standby
// takes the lease once the key is gone (or released); the holder stops
// writing a margin before the key could vanish, by its own monotonic clock,
// so that its writes end before a standby's begin.
package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrLost is the cause of a held lease's context when the holder could not
// prove in time that it still holds it.
var ErrLost = errors.New("lease lost")

// ErrReleased is the cause of a held lease's context once it is released.
var ErrReleased = errors.New("lease released")

// Lease is one key of a lease bucket, as seen by one would-be holder.
type Lease struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	bucket  string
	key     string
	subject string
	holder  string
	t       Timings
	// now is the clock every decision reads; time.Now keeps the monotonic
	// reading, so wall-clock steps do not move a deadline.
	now func() time.Time
}

// Open returns the lease key of bucket for holder (a name people read: host
// and process). The bucket must exist (the admin provisions it).
func Open(ctx context.Context, js jetstream.JetStream, bucket, key, holder string, t Timings) (*Lease, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("lease %s/%s: %w", bucket, key, err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w (the broker's admin creates it: `ikd-aggregator provision`)", bucket, err)
	}
	return &Lease{js: js, kv: kv, bucket: bucket, key: key, subject: "$KV." + bucket + "." + key, holder: holder, t: t, now: time.Now}, nil
}

// Timings returns the lease's timings.
func (l *Lease) Timings() Timings { return l.t }

// Holder returns who holds the lease now, as its holder named itself; ""
// when no one does.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	entry, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read lease %s/%s: %w", l.bucket, l.key, err)
	}
	return holderOf(entry.Value()), nil
}

// Acquire waits until it holds the lease, trying every Poll, or until ctx
// ends (then it returns ctx's error). A try that fails (the broker away, or
// refusing) is tried again; failed, when not nil, hears of each.
func (l *Lease) Acquire(ctx context.Context, failed func(error)) (*Held, error) {
	tick := time.NewTicker(l.t.Poll)
	defer tick.Stop()
	for {
		try, cancel := context.WithTimeout(ctx, max(l.t.TTL, 2*time.Second))
		h, err := l.TryAcquire(try)
		cancel()
		if h != nil {
			return h, nil
		}
		if err != nil && ctx.Err() == nil && failed != nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// TryAcquire takes the lease if no one holds it; it returns nil, nil when
// another does.
func (l *Lease) TryAcquire(ctx context.Context) (*Held, error) {
	token, err := l.token()
	if err != nil {
		return nil, err
	}
	started := l.now()
	rev, err := l.kv.Create(ctx, l.key, token, jetstream.KeyTTL(l.t.TTL))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists) || wrongLastSequence(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("take lease %s/%s: %w", l.bucket, l.key, err)
	}
	hctx, cancel := context.WithCancelCause(context.Background())
	h := &Held{l: l, token: token, rev: rev, renewed: started, ctx: hctx, cancel: cancel,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go h.keep()
	return h, nil
}

// token is the value a holder writes: its name and a nonce, so that it
// recognises its own renewal and no other holder's, even its own earlier one.
func (l *Lease) token() ([]byte, error) {
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("lease nonce: %w", err)
	}
	return []byte(l.holder + " " + hex.EncodeToString(nonce)), nil
}

func holderOf(token []byte) string {
	if i := bytes.LastIndexByte(token, ' '); i >= 0 {
		return string(token[:i])
	}
	return string(token)
}

// Held is a lease this process holds until it is lost or released.
type Held struct {
	l      *Lease
	token  []byte
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	rev     uint64
	renewed time.Time // when the last renewal that the broker confirmed was sent

	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

// Context ends when the lease is lost (cause ErrLost) or released
// (ErrReleased). Work fenced by the lease stops then; whoever writes must
// still check Deadline, which does not wait for the context's goroutine.
func (h *Held) Context() context.Context { return h.ctx }

// Deadline is until when the holder may write: every statement it issues
// must end by then. It moves on with each renewal; zero once the context
// has ended.
func (h *Held) Deadline() time.Time {
	if h.ctx.Err() != nil {
		return time.Time{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.l.t.Deadline(h.renewed)
}

// Holds reports whether the holder may write now.
func (h *Held) Holds() bool { return h.l.now().Before(h.Deadline()) }

// Revision is the key's revision of the holder's last renewal.
func (h *Held) Revision() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// Release stops renewing and deletes the key if it is still the holder's,
// so that a standby takes over at once instead of after the TTL. Call it
// only once nothing fenced by the lease writes any more.
func (h *Held) Release(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.stopped
	if h.ctx.Err() != nil {
		return nil // lost: the key is gone or another's
	}
	h.cancel(ErrReleased)
	err := h.l.kv.Delete(ctx, h.l.key, jetstream.LastRevision(h.Revision()))
	if err != nil && !wrongLastSequence(err) {
		return fmt.Errorf("release lease %s/%s: %w", h.l.bucket, h.l.key, err)
	}
	return nil
}

// keep renews the lease until Release, or until the deadline passes
// without a confirmed renewal, which ends the context with ErrLost.
func (h *Held) keep() {
	defer close(h.stopped)
	var failure error
	for {
		h.mu.Lock()
		renewed := h.renewed
		h.mu.Unlock()
		timer := time.NewTimer(h.l.t.NextRenewal(h.l.now(), renewed, failure != nil))
		select {
		case <-h.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
		if !h.l.t.Holds(h.l.now(), renewed) {
			h.cancel(fmt.Errorf("%w: not renewed within %s (last renewal error: %v)", ErrLost, h.l.t.TTL-h.l.t.Margin, failure))
			return
		}
		failure = h.renew(renewed)
		if errors.Is(failure, ErrLost) {
			h.cancel(failure)
			return
		}
	}
}

// renew writes the key again with a fresh TTL if it is still at the
// holder's revision.
func (h *Held) renew(renewed time.Time) error {
	started := h.l.now()
	ctx, cancel := context.WithDeadline(context.Background(), h.l.t.Deadline(renewed))
	defer cancel()
	msg := &nats.Msg{Subject: h.l.subject, Data: h.token, Header: nats.Header{}}
	ack, err := h.l.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(h.Revision()), jetstream.WithMsgTTL(h.l.t.TTL))
	if err == nil {
		h.mu.Lock()
		h.rev, h.renewed = ack.Sequence, started
		h.mu.Unlock()
		return nil
	}
	if !wrongLastSequence(err) {
		return fmt.Errorf("renew: %w", err)
	}
	// The key moved on. Either a renewal whose answer was lost stored it
	// (then it is ours: take its revision, but count from the last renewal
	// confirmed, which is earlier), or the key expired or another took it.
	entry, gerr := h.l.kv.Get(ctx, h.l.key)
	switch {
	case gerr == nil && bytes.Equal(entry.Value(), h.token):
		h.mu.Lock()
		h.rev = entry.Revision()
		h.mu.Unlock()
		return errors.New("renew: a renewal's answer was lost; retrying from its revision")
	case gerr == nil:
		return fmt.Errorf("%w: now held by %s", ErrLost, holderOf(entry.Value()))
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		return fmt.Errorf("%w: the key expired before it was renewed", ErrLost)
	}
	return fmt.Errorf("renew: %w; then reading it: %w", err, gerr)
}

// wrongLastSequence reports a refused compare-and-set: the key is not at
// the revision expected (10071, or 10164 on replicated streams).
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
