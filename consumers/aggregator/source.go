package aggregator

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Message is what the aggregator needs of a delivered message: its payload,
// where it came from, and the ways to settle it. jetstream.Msg is one.
type Message interface {
	Data() []byte
	Subject() string
	Metadata() (*jetstream.MsgMetadata, error)
	Ack() error
	Nak() error
	NakWithDelay(delay time.Duration) error
	InProgress() error
	Term() error
	TermWithReason(reason string) error
}

// Source hands out the messages to aggregate, one at a time, until Stop.
type Source interface {
	// Next waits for the next message; ctx's deadline is how a batch closes
	// on time.
	Next(ctx context.Context) (Message, error)
	Stop()
}

// pullSource is the durable pull consumer's message iterator as a Source.
type pullSource struct {
	iter jetstream.MessagesContext
}

func (s pullSource) Next(ctx context.Context) (Message, error) {
	for {
		msg, err := s.iter.Next(jetstream.NextContext(ctx))
		// Missed heartbeats mean a slow or restarting broker; the iterator
		// has already issued a new pull, and the connection's own handlers
		// log the disconnect, so the aggregator waits on instead of exiting.
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return msg, nil
	}
}

func (s pullSource) Stop() { s.iter.Stop() }
