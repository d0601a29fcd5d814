package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ikd-pipeline/ikd/internal/logsample"
	"github.com/ikd-pipeline/ikd/internal/retry"
)

// write stores a batch and settles every message in it: acknowledged once
// written, sent back for later when the warehouse refuses one permanently,
// dead-lettered when it has used its deliveries. Until a message is settled
// the broker is told it is in progress, however long the retries and the
// halving of a refused batch take: otherwise it would be delivered again and
// written twice.
func (a *Aggregator) write(ctx context.Context, batch []pending) error {
	stop := a.keepAlive(batch)
	defer stop()
	a.metrics.batchSize.Observe(float64(len(batch)))
	return a.store(ctx, batch)
}

// store is write without the keep-alive, for the halves of a refused batch.
func (a *Aggregator) store(ctx context.Context, batch []pending) error {
	err := a.writeWithRetry(ctx, batch)
	switch judgeBatch(err, ctx.Err() != nil, len(batch)) {
	case acknowledge:
		a.ack(ctx, batch)
	case sendBack:
		// Shutting down mid-outage: hand the messages back at once so another
		// aggregator, or the next start, takes them.
		nakAll(batch)
	case halve:
		// A refusal may come from one event; the halves are written on their
		// own so that the others are written and only the culprit stays.
		half := len(batch) / 2
		if err := a.store(ctx, batch[:half]); err != nil {
			return err
		}
		return a.store(ctx, batch[half:])
	case refuseOne:
		return a.refused(ctx, batch[0], err)
	}
	return nil
}

// writeTimeout bounds one write attempt; a warehouse that takes longer is
// treated as unavailable and tried again.
const writeTimeout = 30 * time.Second

// errFenced is why a write is not attempted: this aggregator cannot prove
// any more that it holds the lease.
var errFenced = errors.New("not attempted: the aggregator lease is not held (any more)")

// fence returns until when a write may run, and false once it may not.
func (a *Aggregator) fence() (time.Time, bool) {
	held := a.held.Load()
	if held == nil {
		return time.Time{}, false
	}
	deadline := held.Deadline()
	return deadline, time.Now().Before(deadline)
}

// writeWithRetry holds the batch and tries again for as long as ctx lives
// while the warehouse has transient or setup trouble, with capped exponential
// backoff and jitter; it returns only success, shutdown, or a refusal of the
// rows themselves.
func (a *Aggregator) writeWithRetry(ctx context.Context, batch []pending) error {
	records := make([]Record, len(batch))
	for i, p := range batch {
		records[i] = p.record
	}
	// An outage is waited out: the backlog waits in the broker.
	policy := retry.Policy{Initial: min(100*time.Millisecond, a.cfg.RetryMaxInterval), Max: a.cfg.RetryMaxInterval, Jitter: 0.5}
	var started time.Time
	var held Class
	attempt := func() error {
		// Only the lease's holder writes, and only until its deadline: a
		// statement still running then is cancelled, so that it cannot land
		// after a standby took over.
		deadline, ok := a.fence()
		if !ok {
			return &WriteError{Class: ClassTransient, Err: errFenced}
		}
		// An attempt under way finishes even when shutdown begins, so that a
		// written batch is also acknowledged; only further retries stop.
		if limit := time.Now().Add(writeTimeout); limit.Before(deadline) {
			deadline = limit
		}
		actx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		defer cancel()
		defer a.metrics.timeWrite(time.Now())
		return a.writer.Write(actx, records)
	}
	onRetry := func(err error, _ time.Duration) {
		if errors.Is(err, errFenced) {
			return // the lease is going; the loss is logged once it is noticed
		}
		a.Stats.Retries.Add(1)
		if started.IsZero() {
			started = time.Now()
		}
		if class := classOf(err); class != held {
			held = class
			a.logHold(class, len(records), err)
		}
	}
	err := retry.Do(ctx, policy, attempt, retryable, onRetry)
	if !started.IsZero() && err == nil {
		a.logger.Info("warehouse back; batch written", "events", len(records), "held_for", time.Since(started).Round(time.Millisecond))
	}
	return err
}

// logHold says once why a batch is held: waiting is right for both faults,
// but only one of them needs a human.
func (a *Aggregator) logHold(class Class, events int, err error) {
	if class == ClassSetup {
		a.logger.Error("warehouse refuses every write; holding the batch until its setup is fixed", "events", events, "err", err)
		return
	}
	a.logger.Warn("warehouse unavailable; holding the batch and retrying", "events", events, "err", err)
}

func (a *Aggregator) ack(ctx context.Context, batch []pending) {
	var first uint64
	for _, p := range batch {
		// An acknowledgement lost on the way only causes a redelivery, which
		// the warehouse's aggregates absorb.
		_ = p.msg.Ack()
		if len(a.refusals) > 0 {
			delete(a.refusals, p.record.Seq)
		}
		if p.delivered <= 1 {
			first++
		}
	}
	a.Stats.Written.Add(first)
	a.Stats.Rewritten.Add(uint64(len(batch)) - first)
	a.metrics.counted(batch)
	a.announce(ctx, batch)
}

// refused settles one event whose row the warehouse refused: it comes back
// after a delay that doubles with each refusal, and is dead-lettered with the
// warehouse's reason at the MaxDeliver-th. A refused event taken up by
// another aggregator, or after a restart, starts counting anew: it may be
// tried more often, never less.
func (a *Aggregator) refused(ctx context.Context, p pending, err error) error {
	seq := p.record.Seq
	a.refusals[seq]++
	n := a.refusals[seq]
	choice := judgeRefusal(n, a.cfg.MaxDeliver, a.cfg.RefusedDelay)
	if choice.deadLetter {
		delete(a.refusals, seq)
		meta, merr := p.msg.Metadata()
		if merr != nil {
			return fmt.Errorf("dead-letter event %s: %w", p.record.EventID, merr)
		}
		a.deadLetter(ctx, p.msg, meta, "write_failed", err.Error())
		return nil
	}
	if total := a.Stats.Refused.Add(1); logsample.Due(total) {
		a.logger.Error("warehouse refused an event; it will come back", "event_id", p.record.EventID,
			"refusals", n, "retry_in", choice.delay, "refused_total", total, "err", err)
	}
	_ = p.msg.NakWithDelay(choice.delay)
	return nil
}
