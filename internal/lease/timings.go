package lease

import (
	"errors"
	"fmt"
	"time"
)

// Timings are a lease's durations. For derives them from the TTL; tests and
// programs with other needs may set them one by one and Validate them.
type Timings struct {
	// TTL is how long the key lives after the holder's last renewal; a
	// standby may take the lease once it is gone.
	TTL time.Duration
	// Renew is how often the holder renews.
	Renew time.Duration
	// Margin is how long before TTL the holder stops writing: it covers the
	// clocks' rate drift and the time a statement under way takes to stop.
	Margin time.Duration
	// Poll is how often a standby tries to take the lease, and how soon a
	// failed renewal is tried again.
	Poll time.Duration
}

// For returns the timings of a lease of ttl: renewed every quarter, writes
// stopped a quarter before it may expire, so that two renewals may fail
// before the holder stops, and standbys polling every tenth (100ms to 1s).
func For(ttl time.Duration) Timings {
	return Timings{TTL: ttl, Renew: ttl / 4, Margin: ttl / 4, Poll: min(max(ttl/10, 100*time.Millisecond), time.Second)}
}

// Validate refuses timings under which the lease cannot be kept or would not
// fence: the broker keeps per-key TTLs in whole seconds, and a holder must
// have renewed before it has to stop.
func (t Timings) Validate() error {
	var errs []error
	if t.TTL < time.Second || t.TTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("TTL must be a whole number of seconds, at least 1s (the broker keeps key TTLs in seconds), got %s", t.TTL))
	}
	if t.Renew <= 0 || t.Renew >= t.TTL/2 {
		errs = append(errs, fmt.Errorf("renew interval must be positive and under half the TTL %s, got %s", t.TTL, t.Renew))
	}
	if t.Margin <= 0 || t.Renew+t.Margin >= t.TTL {
		errs = append(errs, fmt.Errorf("margin must be positive and leave room for a renewal (renew %s + margin < TTL %s), got %s", t.Renew, t.TTL, t.Margin))
	}
	if t.Poll <= 0 {
		errs = append(errs, fmt.Errorf("poll interval must be positive, got %s", t.Poll))
	}
	return errors.Join(errs...)
}

// Deadline is until when a holder whose last renewal was sent at renewed
// may write. The broker stored that renewal after it was sent, so the key
// lives until at least renewed+TTL by a clock that runs at the holder's
// rate; Margin before that the holder stops.
func (t Timings) Deadline(renewed time.Time) time.Time {
	return renewed.Add(t.TTL - t.Margin)
}

// Holds reports whether a holder whose last renewal was sent at renewed may
// still write at now.
func (t Timings) Holds(now, renewed time.Time) bool {
	return now.Before(t.Deadline(renewed))
}

// NextRenewal is how long the holder waits before renewing again: Renew
// after a renewal that succeeded, Poll after one that failed, and never past
// the deadline, where it must notice that it lost the lease.
func (t Timings) NextRenewal(now, renewed time.Time, failed bool) time.Duration {
	wait := t.Renew
	if failed {
		wait = t.Poll
	}
	return max(0, min(wait, t.Deadline(renewed).Sub(now)))
}
