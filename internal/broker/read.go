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
// never comes.
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
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return 0, nil // nothing matches the filter
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	defer iter.Stop()
	n := 0
	for {
		nctx, cancel := context.WithTimeout(ctx, readIdle)
		msg, err := iter.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
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
		n++
		if seq >= last || meta.NumPending == 0 {
			return n, nil
		}
	}
}
