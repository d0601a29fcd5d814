package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readIdle ends a read that receives nothing for this long, in case the
// stream shrank under it (messages deleted or aged out) so its last message
// never comes; unless the stream says a wanted message is still there.
const readIdle = 5 * time.Second

// ReadStream hands fn every message of the stream, through an ordered
// consumer configured by cfg, up to the stream's last message when the read
// began; messages published meanwhile are left for the next read. It returns
// how many messages fn received, and stops at fn's first error.
func ReadStream(ctx context.Context, js jetstream.JetStream, name string, cfg jetstream.OrderedConsumerConfig, fn func(msg jetstream.Msg, seq uint64) error) (int, error) {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 && !remains(ctx, stream, cfg.FilterSubjects, 1, last) {
		return 0, nil // nothing matches the filter
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	defer iter.Stop()
	n, next := 0, uint64(1) // next: the first sequence not read yet
	for {
		nctx, cancel := context.WithTimeout(ctx, readIdle)
		msg, err := iter.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				if remains(ctx, stream, cfg.FilterSubjects, next, last) {
					continue // slow, not done: a loaded machine, or a cluster node that just came back
				}
				return n, nil
			}
			return n, fmt.Errorf("read %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("read %s: %w", name, err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			return n, nil
		}
		if err := fn(msg, seq); err != nil {
			return n, err
		}
		n, next = n+1, seq+1
		if seq >= last || meta.NumPending == 0 {
			return n, nil
		}
	}
}

// remains reports whether the stream still holds a message the read wants
// from sequence from up to last, so that a read that went idle was slow
// rather than done. It asks the stream directly, which only a role that may
// get messages (the admin) can; for the others a read ends when idle.
func remains(ctx context.Context, stream jetstream.Stream, filters []string, from, last uint64) bool {
	if len(filters) == 0 {
		filters = []string{">"}
	}
	for _, f := range filters {
		gctx, cancel := context.WithTimeout(ctx, readIdle)
		msg, err := stream.GetMsg(gctx, from, jetstream.WithGetMsgSubject(f))
		cancel()
		if err == nil && msg.Sequence <= last {
			return true
		}
	}
	return false
}
