package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/retry"
)

const (
	// stallAfter is how long a read waits for its next message before it
	// asks the stream's leader what is left: a consumer placed on a replica
	// that is still catching up after a restart delivers late, or not at all.
	stallAfter = 2 * time.Second
	// requestTimeout bounds one request to the broker, so that a request to
	// a node that died is repeated instead of waiting out the whole read.
	requestTimeout = 5 * time.Second
	// readerInactive is when the broker deletes a read's consumer that its
	// reader left behind (a stalled one it replaced, or after a crash).
	readerInactive = time.Minute
)

// readRetry paces the repeated requests of a read while the broker elects a
// leader or a node comes back; only the caller's context ends them.
var readRetry = retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.2}

// ReadStream hands fn every message of the stream that cfg's filter selects,
// in stream order, up to the stream's last message when the read began;
// messages published meanwhile are left for the next read. It returns how
// many messages fn received, and stops at fn's first error, which it returns
// as is.
//
// The read is complete by construction: it ends only once every sequence up
// to that last one was delivered, or is known from the stream's leader to
// hold no message for the filter (never stored, deleted, or removed by the
// stream's limits). A read that stalls (a node died, the consumer sits on a
// replica still catching up) asks the leader what is left and goes on from
// the next sequence on a new consumer; only ctx ends it early, with an error.
// cfg's FilterSubjects and HeadersOnly apply; the read always starts at the
// stream's first message.
func ReadStream(ctx context.Context, js jetstream.JetStream, name string, cfg jetstream.OrderedConsumerConfig, fn func(msg jetstream.Msg, seq uint64) error) (int, error) {
	if cfg.DeliverPolicy != jetstream.DeliverAllPolicy || cfg.OptStartSeq != 0 || cfg.OptStartTime != nil {
		return 0, fmt.Errorf("read %s: a read starts at the stream's first message; its delivery policy cannot be set", name)
	}
	r := &reader{js: js, name: name, filters: cfg.FilterSubjects, headersOnly: cfg.HeadersOnly, next: 1}
	if err := r.begin(ctx); err != nil {
		return 0, err
	}
	for {
		done, err := r.skipEmpty(ctx)
		if err != nil || done {
			return r.n, err
		}
		if err := r.pass(ctx, fn); err != nil {
			return r.n, err
		}
	}
}

// reader is the state of one ReadStream.
type reader struct {
	js          jetstream.JetStream
	name        string
	filters     []string // none: every subject
	headersOnly bool
	stream      jetstream.Stream
	last        uint64 // the stream's last sequence when the read began
	next        uint64 // the first sequence not yet handed to fn nor known to be empty
	n           int    // messages handed to fn
}

// begin looks the stream up and notes its last sequence.
func (r *reader) begin(ctx context.Context) error {
	err := r.request(ctx, func(ctx context.Context) error {
		s, err := r.js.Stream(ctx, r.name)
		if err != nil {
			return err
		}
		r.stream = s
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s: stream info: %w", r.name, err)
	}
	state := r.stream.CachedInfo().State
	r.last = state.LastSeq
	if state.Msgs == 0 {
		r.next = r.last + 1 // nothing to read
	}
	return nil
}

// skipEmpty moves next to the first sequence that holds a message for the
// filter, as the stream's leader knows it; it reports done when none is left
// up to last.
func (r *reader) skipEmpty(ctx context.Context) (bool, error) {
	if r.next > r.last {
		return true, nil
	}
	seq, err := r.nextStored(ctx)
	if err != nil {
		return false, err
	}
	if seq == 0 || seq > r.last {
		r.next = r.last + 1
		return true, nil
	}
	r.next = seq
	return false, nil
}

// nextStored asks the stream's leader for the first sequence from next on
// that holds a message for the filter; 0 means none.
func (r *reader) nextStored(ctx context.Context) (uint64, error) {
	filters := r.filters
	if len(filters) == 0 {
		filters = []string{">"}
	}
	var first uint64
	for _, f := range filters {
		var seq uint64
		err := r.request(ctx, func(ctx context.Context) error {
			m, err := r.stream.GetMsg(ctx, r.next, jetstream.WithGetMsgSubject(f))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				seq = 0
				return nil
			}
			if err != nil {
				return err
			}
			seq = m.Sequence
			return nil
		})
		if err != nil {
			return 0, r.errorf(ctx, "look up the next message on %s: %w", f, err)
		}
		if seq != 0 && (first == 0 || seq < first) {
			first = seq
		}
	}
	return first, nil
}

// pass reads through one consumer from next until last, a stall, or a gap
// that hides a message the consumer skipped; the caller then asks the leader
// what is left and starts another pass.
func (r *reader) pass(ctx context.Context, fn func(msg jetstream.Msg, seq uint64) error) error {
	var cons jetstream.Consumer
	err := r.request(ctx, func(ctx context.Context) error {
		var err error
		cons, err = r.js.CreateConsumer(ctx, r.name, r.consumerConfig())
		return err
	})
	if err != nil {
		return r.errorf(ctx, "create consumer: %w", err)
	}
	defer r.remove(ctx, cons)
	iter, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return r.errorf(ctx, "consume: %w", err)
	}
	defer iter.Stop()
	for r.next <= r.last {
		nctx, cancel := context.WithTimeout(ctx, stallAfter)
		msg, err := iter.Next(jetstream.NextContext(nctx))
		cancel()
		if ctx.Err() != nil {
			return r.errorf(ctx, "stopped")
		}
		if err != nil {
			if !retryable(err) {
				return r.errorf(ctx, "consume: %w", err)
			}
			return nil // stalled
		}
		meta, err := msg.Metadata()
		if err != nil {
			return r.errorf(ctx, "message metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq < r.next {
			continue // already handed over
		}
		if seq > r.next {
			// Between them lie deleted messages, other subjects, or messages
			// this consumer's replica does not hold yet; the leader knows.
			stored, err := r.nextStored(ctx)
			if err != nil {
				return err
			}
			if stored != 0 && stored < seq {
				return nil // the consumer skipped one: read again from it
			}
		}
		if seq > r.last {
			r.next = r.last + 1
			return nil
		}
		if err := fn(msg, seq); err != nil {
			return err
		}
		r.n++
		r.next = seq + 1
		if meta.NumPending == 0 {
			return nil // this consumer sees no more; the leader may know better
		}
	}
	return nil
}

// consumerConfig is an ordered read from next: an ephemeral consumer in
// memory, on one replica, without acknowledgements.
func (r *reader) consumerConfig() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.next,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       r.headersOnly,
		InactiveThreshold: readerInactive,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if len(r.filters) == 1 {
		cfg.FilterSubject = r.filters[0]
	} else if len(r.filters) > 1 {
		cfg.FilterSubjects = r.filters
	}
	return cfg
}

// remove deletes a pass's consumer; one it cannot delete now (the broker is
// away, the read was cancelled) goes after readerInactive.
func (r *reader) remove(ctx context.Context, cons jetstream.Consumer) {
	if ctx.Err() != nil {
		return // the caller is gone and waits for nobody
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_ = r.js.DeleteConsumer(dctx, r.name, cons.CachedInfo().Name)
}

// request runs op, each attempt bounded by requestTimeout, until it succeeds,
// fails for good, or ctx ends.
func (r *reader) request(ctx context.Context, op func(ctx context.Context) error) error {
	return retry.Do(ctx, readRetry, func() error {
		actx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return op(actx)
	}, func(err error) bool { return ctx.Err() == nil && retryable(err) }, nil)
}

// errorf says where the read was when it failed: the stream, the sequence,
// and the last one it reads to.
func (r *reader) errorf(ctx context.Context, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return fmt.Errorf("read %s at sequence %d of %d: %w", r.name, r.next, r.last, err)
}

// retryable says whether a request of a read may succeed when repeated: the
// cluster is electing a leader, a node died under the request, the client is
// reconnecting. A missing stream, a refused permission, a closed connection
// or a cancelled read do not change by waiting.
func retryable(err error) bool {
	for _, permanent := range []error{
		jetstream.ErrStreamNotFound, jetstream.ErrStreamNameRequired, jetstream.ErrInvalidStreamName,
		jetstream.ErrInvalidOption, nats.ErrConnectionClosed, nats.ErrPermissionViolation,
		nats.ErrAuthorization, context.Canceled,
	} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}
