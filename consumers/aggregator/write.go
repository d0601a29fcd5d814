package aggregator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// write stores a batch and settles every message in it: acknowledged once
// written, sent back for later when the warehouse refuses one permanently,
// dead-lettered when it has used its deliveries.
func (a *Aggregator) write(ctx context.Context, batch []pending) error {
	err := a.writeWithRetry(ctx, batch)
	switch {
	case err == nil:
		a.ack(batch)
		return nil
	case ctx.Err() != nil:
		// Shutting down mid-outage: hand the messages back at once so another
		// aggregator, or the next start, takes them.
		nakAll(batch)
		return nil
	case len(batch) > 1:
		// A refusal that retrying cannot mend may come from one event; halve
		// the batch so that the others are written and only the culprit stays.
		half := len(batch) / 2
		if err := a.write(ctx, batch[:half]); err != nil {
			return err
		}
		return a.write(ctx, batch[half:])
	default:
		return a.refused(ctx, batch[0], err)
	}
}

// writeTimeout bounds one write attempt; a warehouse that takes longer is
// treated as unavailable and tried again.
const writeTimeout = 30 * time.Second

// writeWithRetry retries only what may succeed later (warehouse.Retryable),
// with capped exponential backoff and jitter, for as long as ctx lives. The
// messages stay unacknowledged meanwhile and are kept ours with InProgress.
func (a *Aggregator) writeWithRetry(ctx context.Context, batch []pending) error {
	records := make([]warehouse.Record, len(batch))
	for i, p := range batch {
		records[i] = p.record
	}
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval = 100 * time.Millisecond
	policy.MaxInterval = a.cfg.RetryMaxInterval
	policy.MaxElapsedTime = 0 // an outage is waited out; the backlog waits in the broker
	policy.RandomizationFactor = 0.5

	var started time.Time
	keepAlive := time.Now()
	attempt := func() error {
		// An attempt under way finishes even when shutdown begins, so that a
		// written batch is also acknowledged; only further retries stop.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		err := a.writer.Write(actx, records)
		if err == nil || !warehouse.Retryable(err) {
			return backoff.Permanent(err)
		}
		a.Stats.Retries.Add(1)
		if started.IsZero() {
			started = time.Now()
			a.logger.Warn("warehouse unavailable; holding the batch and retrying", "events", len(records), "err", err)
		}
		if time.Since(keepAlive) > a.cfg.AckWait/3 {
			for _, p := range batch {
				_ = p.msg.InProgress()
			}
			keepAlive = time.Now()
		}
		return err
	}
	err := backoff.Retry(attempt, backoff.WithContext(policy, ctx))
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		err = perm.Err
	}
	if !started.IsZero() && err == nil {
		a.logger.Info("warehouse back; batch written", "events", len(records), "outage", time.Since(started).Round(time.Millisecond))
	}
	return err
}

func (a *Aggregator) ack(batch []pending) {
	for _, p := range batch {
		// An acknowledgement lost on the way only causes a redelivery, which
		// the warehouse's aggregates absorb.
		_ = p.msg.Ack()
	}
	a.Stats.Written.Add(uint64(len(batch)))
	a.Stats.Batches.Add(1)
	a.announce(batch)
}

// refused settles one event that the warehouse refused for good: it comes
// back after a delay that grows with each delivery, and is dead-lettered
// with the warehouse's reason once its deliveries are used up.
func (a *Aggregator) refused(ctx context.Context, p pending, err error) error {
	if p.tries >= uint64(a.cfg.MaxDeliver) {
		meta, merr := p.msg.Metadata()
		if merr != nil {
			return fmt.Errorf("dead-letter event %s: %w", p.record.EventID, merr)
		}
		a.deadLetter(ctx, p.msg, meta, "write_failed", err.Error())
		return nil
	}
	delay := min(a.cfg.RefusedDelay<<min(p.tries, 20), 5*time.Minute)
	a.logger.Error("warehouse refused an event; it will come back", "event_id", p.record.EventID, "delivery", p.tries, "retry_in", delay, "err", err)
	_ = p.msg.NakWithDelay(delay)
	return nil
}
