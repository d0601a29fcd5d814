package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Atomic batches are how a broker that syncs every write to disk keeps up: it
// stores a batch with one fsync instead of one per message (nats-server's
// atomic batch publish, ADR-50), so the events a second rise with the batch
// size instead of being held to one fsync each. A batch is all or nothing, and
// in order; whatever the broker refuses as a batch (a duplicate inside it, a
// stream without atomic publish, a message too large) is sent again one event
// at a time, which judges each event on its own.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"

	defaultBatch = 256
	// MaxBatch is the most events a batch may hold: nats-server's own limit.
	MaxBatch = 1000
	// batchesInFlight bounds the batches awaiting their commit ack; the
	// broker allows 50 a stream, shared by every publisher.
	batchesInFlight = 4

	// errCodeAtomicDisabled is the broker's answer when the stream does not
	// allow atomic publish (nats-server JSAtomicPublishDisabledErr).
	errCodeAtomicDisabled jetstream.ErrorCode = 10174
)

// batchAck is the broker's answer to a batch's commit.
type batchAck struct {
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Batch  string              `json:"batch"`
	Count  int                 `json:"count"`
	Error  *jetstream.APIError `json:"error,omitempty"`
}

// batchOutcome is what became of one batch.
type batchOutcome int

const (
	batchStored  batchOutcome = iota // every event stored, once
	batchRefused                     // nothing stored; try the events one by one
	batchUnknown                     // the ack was lost: stored or not, resend
)

// batching reports whether this publisher still sends atomic batches.
func (p *Publisher) batching() bool {
	return p.opts.Batch > 1 && !p.noBatches.Load()
}

// chunks cuts events into batches of at most Options.Batch.
func (p *Publisher) chunks(events []*outgoing) [][]*outgoing {
	var out [][]*outgoing
	for len(events) > 0 {
		n := min(p.opts.Batch, len(events))
		out = append(out, events[:n])
		events = events[n:]
	}
	return out
}

// batchRound sends events as concurrent atomic batches. It returns the
// events of refused batches, for the caller to send one by one, and those
// whose batch ack was lost, to resend in a later round.
func (p *Publisher) batchRound(ctx context.Context, events []*outgoing, res *Result) (singles, again []*outgoing) {
	chunks := p.chunks(events)
	outcomes := make([]batchOutcome, len(chunks))
	sem := make(chan struct{}, batchesInFlight)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			outcomes[i] = p.sendBatch(ctx, chunk)
		})
	}
	wg.Wait()
	for i, chunk := range chunks {
		switch outcomes[i] {
		case batchStored:
			res.Published += len(chunk)
		case batchRefused:
			singles = append(singles, chunk...)
		case batchUnknown:
			again = append(again, chunk...)
		}
	}
	return singles, again
}

// sendBatch publishes chunk as one atomic batch and waits for its commit.
// On batchUnknown every event holds the error; on batchRefused none is marked
// as tried, since the broker stored nothing of it.
func (p *Publisher) sendBatch(ctx context.Context, chunk []*outgoing) batchOutcome {
	err := p.publishBatch(ctx, chunk)
	var api *jetstream.APIError
	switch {
	case err == nil:
		return batchStored
	case errors.As(err, &api):
		if api.ErrorCode == errCodeAtomicDisabled && p.noBatches.CompareAndSwap(false, true) {
			p.logger.Warn("the events stream does not allow atomic batches: publishing one event at a time, one disk sync each; provision the streams again to allow them",
				"err", err)
		}
		return batchRefused
	case errors.Is(err, nats.ErrMaxPayload):
		// One message too large for the connection: the others may pass alone.
		return batchRefused
	}
	for _, o := range chunk {
		o.tries++
		o.err = err
	}
	return batchUnknown
}

// publishBatch sends every message of chunk without waiting, then the last one
// as the commit, whose ack says what the broker did with the batch.
func (p *Publisher) publishBatch(ctx context.Context, chunk []*outgoing) error {
	if err := p.ready(ctx); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	id := uuid.NewString()
	for i, o := range chunk {
		msg := &nats.Msg{Subject: o.msg.Subject, Data: o.msg.Data, Header: nats.Header{}}
		for k, v := range o.msg.Header {
			msg.Header[k] = v
		}
		msg.Header.Set(batchIDHeader, id)
		msg.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i < len(chunk)-1 {
			if err := p.nc.PublishMsg(msg); err != nil {
				return fmt.Errorf("send batch: %w", err)
			}
			continue
		}
		msg.Header.Set(batchCommitHeader, "1")
		return p.commit(ctx, msg, len(chunk))
	}
	return nil
}

func (p *Publisher) commit(ctx context.Context, msg *nats.Msg, n int) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.AckTimeout)
	defer cancel()
	reply, err := p.nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("batch ack: %w", jetstream.ErrNoStreamResponse)
	case err != nil:
		return fmt.Errorf("batch ack: %w", err)
	}
	var ack batchAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return fmt.Errorf("batch ack %q: %w", reply.Data, err)
	}
	if ack.Error != nil {
		return fmt.Errorf("batch ack: %w", ack.Error)
	}
	if ack.Count != n {
		// The broker answers for the whole batch or none of it; anything else
		// is not an ack of ours.
		return fmt.Errorf("batch ack counts %d events, sent %d", ack.Count, n)
	}
	return nil
}
