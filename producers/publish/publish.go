// Package publish puts events on the broker fast and at least once: it
// publishes asynchronously within a bounded window of unacknowledged
// messages, waits for every ack, and resends what failed. Each message carries
// the event id as its Nats-Msg-Id, so a resend of an event the broker already
// stored is acknowledged as a duplicate instead of being stored twice.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/retry"
)

// Options tune a Publisher; zero values take the defaults.
type Options struct {
	// MaxPending bounds the messages awaiting their ack, and with them the
	// memory a slow broker can make us hold; default 4096.
	MaxPending int
	// AckTimeout is how long one ack may take before its event is resent;
	// default 5s.
	AckTimeout time.Duration
	// RetryFor is how long Publish keeps resending failed events before it
	// gives up on them; default 1m.
	RetryFor time.Duration
	// Ordered makes the broker store events in the order given even when
	// some fail and are resent: each is sent once the one before it was
	// acknowledged, so throughput is one event per round trip. The spool
	// uses it to deliver a counter's events in order.
	Ordered bool
	// Batch is the most events sent as one atomic batch, stored by the
	// broker with one disk sync (see batch.go); default 256, at most
	// MaxBatch; 1 sends every event on its own.
	Batch int
}

const (
	defaultMaxPending = 4096
	defaultAckTimeout = 5 * time.Second
	defaultRetryFor   = time.Minute

	// The retry backoff starts short, since most failures are a broker
	// restart, and is capped so that work resumes soon after the broker does.
	retryInitial = 100 * time.Millisecond
	retryMax     = 2 * time.Second
)

// ReceivedAtHeader carries when an office agent received the event (RFC 3339,
// UTC), so that the time a counter's link held it back can be told apart from
// the counter's own clock without changing the contract's body.
const ReceivedAtHeader = "Ikd-Received-At"

// Result counts the events the broker acknowledged.
type Result struct {
	Published  int // stored by this call
	Duplicates int // already in the stream's duplicate window before this call
}

// Publisher publishes events to JetStream. It is safe for concurrent use.
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	opts   Options
	logger *slog.Logger
	// noBatches is set once the stream has refused atomic batches.
	noBatches atomic.Bool
}

// New returns a Publisher on nc. It makes its own JetStream context because
// the window of pending acks is a property of that context.
func New(nc *nats.Conn, opts Options, logger *slog.Logger) (*Publisher, error) {
	opts = withDefaults(opts)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(opts.MaxPending),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("publish: jetstream: %w", err)
	}
	return &Publisher{nc: nc, js: js, opts: opts, logger: logger.With("component", "publish")}, nil
}

func withDefaults(o Options) Options {
	if o.MaxPending <= 0 {
		o.MaxPending = defaultMaxPending
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = defaultAckTimeout
	}
	if o.RetryFor <= 0 {
		o.RetryFor = defaultRetryFor
	}
	if o.Batch <= 0 {
		o.Batch = defaultBatch
	}
	o.Batch = min(o.Batch, MaxBatch)
	return o
}

// outgoing is one event on its way, with the error of its last attempt.
type outgoing struct {
	id    string
	msg   *nats.Msg
	err   error
	tries int // sends so far
}

// Publish sends evs and returns once the broker has acknowledged each of them
// or Publish has given up on it. An event whose ack failed or did not come in
// time is resent with backoff for up to Options.RetryFor; a resend that the
// broker reports as a duplicate counts as published, since the lost ack was
// most likely for this call's own earlier send. Events that could not be
// published are named in the returned *Error; the Result counts the others.
func (p *Publisher) Publish(ctx context.Context, evs []events.Event) (Result, error) {
	pending, failures := messages(evs)
	var res Result
	op := func() error {
		var lost []Failure
		if p.opts.Ordered {
			pending, lost = p.roundInOrder(ctx, pending, &res)
		} else {
			pending, lost = p.round(ctx, pending, &res)
		}
		failures = append(failures, lost...)
		if len(pending) > 0 {
			return fmt.Errorf("%d events unacknowledged: %w", len(pending), pending[0].err)
		}
		return nil
	}
	rounds := 0
	notify := func(err error, wait time.Duration) {
		// A broker restart means many rounds; the first says what is going on.
		if rounds++; rounds == 1 {
			p.logger.Warn("resending events", "err", err, "in", wait)
		}
	}
	// Each pending event holds the error of its last attempt, which says more
	// than Do's; what op returns is always worth another round, since the
	// events refused for good have left pending.
	_ = retry.Do(ctx, p.policy(), op, func(error) bool { return true }, notify)
	failures = append(failures, givenUp(ctx, pending)...)
	if len(failures) > 0 {
		return res, &Error{Failures: failures, Total: len(evs)}
	}
	return res, nil
}

// givenUp turns the events still pending after the retries into failures,
// saying so when the caller's ctx ended them.
func givenUp(ctx context.Context, pending []*outgoing) []Failure {
	failures := make([]Failure, len(pending))
	for i, o := range pending {
		err := o.err
		if ctx.Err() != nil {
			err = fmt.Errorf("%w; last attempt: %w", ctx.Err(), o.err)
		}
		failures[i] = Failure{EventID: o.id, Err: err}
	}
	return failures
}

// messages encodes evs; an event that cannot be encoded is a failure at once.
func messages(evs []events.Event) ([]*outgoing, []Failure) {
	out := make([]*outgoing, 0, len(evs))
	var failures []Failure
	for _, ev := range evs {
		data, err := ev.Marshal()
		if err != nil {
			failures = append(failures, Failure{EventID: ev.EventID, Err: fmt.Errorf("encode: %w", err)})
			continue
		}
		msg := &nats.Msg{Subject: ev.Subject(), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.EventID)
		if !ev.ReceivedAt.IsZero() {
			msg.Header.Set(ReceivedAtHeader, ev.ReceivedAt.UTC().Format(time.RFC3339Nano))
		}
		out = append(out, &outgoing{id: ev.EventID, msg: msg})
	}
	return out, failures
}

// policy paces the rounds of resends and gives up after Options.RetryFor.
func (p *Publisher) policy() retry.Policy {
	return retry.Policy{Initial: retryInitial, Max: retryMax, Jitter: 0.5, GiveUpAfter: p.opts.RetryFor}
}

// round sends batch once and waits for its acks. It returns the events worth
// resending and those refused for good.
func (p *Publisher) round(ctx context.Context, batch []*outgoing, res *Result) (again []*outgoing, lost []Failure) {
	if p.batching() && len(batch) > 1 {
		batch, again = p.batchRound(ctx, batch, res)
	}
	futures := p.send(ctx, batch)
	for i, o := range batch {
		if futures[i] != nil {
			o.err = p.await(ctx, futures[i], o, res)
		}
		switch {
		case o.err == nil:
		case ctx.Err() != nil, Refused(o.err):
			lost = append(lost, Failure{EventID: o.id, Err: o.err})
		default:
			again = append(again, o)
		}
	}
	return again, lost
}

// roundInOrder sends batch one atomic batch after the other, each once the
// one before it was stored, and stops at the first that may pass later, so
// that no event after it is stored before it. A batch the broker refuses is
// sent one event at a time, in order.
func (p *Publisher) roundInOrder(ctx context.Context, batch []*outgoing, res *Result) (again []*outgoing, lost []Failure) {
	if !p.batching() {
		return p.roundOneByOne(ctx, batch, res)
	}
	for i, chunk := range p.chunks(batch) {
		behind := batch[i*p.opts.Batch+len(chunk):]
		switch p.sendBatch(ctx, chunk) {
		case batchStored:
			res.Published += len(chunk)
			continue
		case batchUnknown:
			again = chunk
		case batchRefused:
			var refused []Failure
			again, refused = p.roundOneByOne(ctx, chunk, res)
			lost = append(lost, refused...)
		}
		if len(again) > 0 {
			for _, o := range behind {
				o.err = fmt.Errorf("%w %s (%v)", ErrNotSent, again[0].id, again[0].err)
			}
			return append(again, behind...), lost
		}
	}
	return nil, lost
}

// roundOneByOne sends batch one event at a time and stops at the first that
// may pass later, so that no event after it is stored before it. The
// events refused for good are set aside; the order of the rest holds.
func (p *Publisher) roundOneByOne(ctx context.Context, batch []*outgoing, res *Result) (again []*outgoing, lost []Failure) {
	for i, o := range batch {
		futures := p.send(ctx, batch[i:i+1])
		if futures[0] != nil {
			o.err = p.await(ctx, futures[0], o, res)
		}
		switch {
		case o.err == nil:
		case ctx.Err() != nil, Refused(o.err):
			lost = append(lost, Failure{EventID: o.id, Err: o.err})
		default:
			for _, rest := range batch[i+1:] {
				rest.err = fmt.Errorf("%w %s (%v)", ErrNotSent, o.id, o.err)
			}
			return batch[i:], lost
		}
	}
	return nil, lost
}

// send publishes each message of batch without waiting for acks; the window
// of MaxPending makes it wait when the broker falls behind. Messages that
// could not be sent have a nil future and their error set. A failure that
// is not the message's own, but the connection's or that of a broker that
// stopped acknowledging, would fail the rest too: they are not tried.
func (p *Publisher) send(ctx context.Context, batch []*outgoing) []jetstream.PubAckFuture {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, o := range batch {
		// Without a connection the message would only wait in the client's
		// reconnect buffer, and each resend would add another copy there.
		err := p.ready(ctx)
		if err == nil {
			o.tries++
			futures[i], err = p.js.PublishMsgAsync(o.msg, jetstream.WithStallWait(p.opts.AckTimeout))
		}
		switch {
		case err == nil:
		case ctx.Err() == nil && Refused(err):
			o.err = fmt.Errorf("send: %w", err)
		default:
			for _, rest := range batch[i:] {
				rest.err = fmt.Errorf("send: %w", err)
			}
			return futures
		}
	}
	return futures
}

func (p *Publisher) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if status := p.nc.Status(); status != nats.CONNECTED {
		return fmt.Errorf("%w: connection to NATS is %s", nats.ErrDisconnected, status)
	}
	return nil
}

// await waits for one ack of o and counts it.
func (p *Publisher) await(ctx context.Context, f jetstream.PubAckFuture, o *outgoing, res *Result) error {
	select {
	case ack := <-f.Ok():
		if ack.Duplicate && o.tries == 1 {
			res.Duplicates++
		} else {
			res.Published++
		}
		return nil
	case err := <-f.Err():
		return fmt.Errorf("ack: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNotSent is the failure of an event that an Ordered Publisher held back
// because an event before it failed.
var ErrNotSent = errors.New("not sent, to stay behind")

// passingErrs are failures of the link, not of the event: the broker is
// unreachable, restarting or slow, and the same event will pass later.
var passingErrs = []error{
	nats.ErrDisconnected, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
	nats.ErrConnectionDraining, nats.ErrNoServers, nats.ErrStaleConnection,
	nats.ErrReconnectBufExceeded, nats.ErrTimeout, nats.ErrNoResponders,
	jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout, jetstream.ErrTooManyStalledMsgs,
	ErrNotSent,
}

// Refused reports whether a publish failed because the broker refused the
// event itself (larger than the stream or the connection allows, a bad
// subject or request, or an error nobody foresaw), which no resend cures.
// The rest is the link's: unreachable, restarting, slow, JetStream out of
// resources (a full disk) or asking to come back later. It is the one place
// where publish errors are judged. A caller's own ended context is neither:
// callers check it first.
func Refused(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code < http.StatusInternalServerError &&
			api.Code != http.StatusRequestTimeout && api.Code != http.StatusTooManyRequests
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return false
	}
	return !slices.ContainsFunc(passingErrs, func(p error) bool { return errors.Is(err, p) })
}
