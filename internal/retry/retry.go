// Package retry is the pipeline's one retry policy: capped exponential
// backoff with jitter (github.com/cenkalti/backoff/v4), validated, with the
// caller's decision whether an error is worth another attempt.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy says how long to wait between attempts and when to give up.
type Policy struct {
	Initial time.Duration // the first wait
	Max     time.Duration // no wait is longer; the waits double up to it
	// Jitter spreads each wait by up to ±Jitter of it (0 to 1), so that
	// clients that failed together do not come back together.
	Jitter float64
	// GiveUpAfter ends the retries once this long has passed since the first
	// attempt; 0 retries until the context ends (an outage is waited out).
	GiveUpAfter time.Duration
}

// Validate refuses a policy that would spin or never wait.
func (p Policy) Validate() error {
	var errs []error
	if p.Initial <= 0 {
		errs = append(errs, fmt.Errorf("retry: initial wait must be positive, got %s", p.Initial))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("retry: longest wait %s is shorter than the first %s", p.Max, p.Initial))
	}
	if p.Jitter < 0 || p.Jitter > 1 {
		errs = append(errs, fmt.Errorf("retry: jitter must be between 0 and 1, got %v", p.Jitter))
	}
	if p.GiveUpAfter < 0 {
		errs = append(errs, fmt.Errorf("retry: give-up time must not be negative, got %s", p.GiveUpAfter))
	}
	return errors.Join(errs...)
}

// BackOff is the policy as a backoff.BackOff, for a caller that paces its
// own loop.
func (p Policy) BackOff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithRandomizationFactor(p.Jitter),
		backoff.WithMultiplier(2),
		backoff.WithMaxElapsedTime(p.GiveUpAfter))
}

// Do calls op until it succeeds, fails with an error that retryable refuses,
// ctx ends, or the policy gives up, and returns op's last error (ctx's when
// it ended). notify, when not nil, hears each failure that will be retried
// and the wait before the next attempt.
func Do(ctx context.Context, p Policy, op func() error, retryable func(error) bool, notify func(err error, wait time.Duration)) error {
	if err := p.Validate(); err != nil {
		return err
	}
	attempt := func() error {
		err := op()
		if err != nil && !retryable(err) {
			return backoff.Permanent(err)
		}
		return err
	}
	return backoff.RetryNotify(attempt, backoff.WithContext(p.BackOff(), ctx), notify)
}
