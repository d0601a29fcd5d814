package retry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/retry"
)

var quick = retry.Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Jitter: 0.5}

var (
	errPassing = errors.New("connection refused")
	errFinal   = errors.New("row refused")
)

func passing(err error) bool { return errors.Is(err, errPassing) }

func TestValidateRefusesAPolicyThatWouldSpinOrNeverWait(t *testing.T) {
	cases := []struct {
		policy retry.Policy
		want   string // "" accepted
	}{
		{quick, ""},
		{retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.5, GiveUpAfter: time.Minute}, ""},
		{retry.Policy{Max: time.Second}, "initial wait"},
		{retry.Policy{Initial: -time.Second, Max: time.Second}, "initial wait"},
		{retry.Policy{Initial: time.Second, Max: time.Millisecond}, "shorter than the first"},
		{retry.Policy{Initial: time.Second, Max: time.Second, Jitter: 1.5}, "jitter"},
		{retry.Policy{Initial: time.Second, Max: time.Second, GiveUpAfter: -1}, "give-up"},
	}
	for _, c := range cases {
		err := c.policy.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.policy, err, c.want)
		}
	}
}

func TestDoRetriesWhatRetryableAllowsAndStopsAtTheRest(t *testing.T) {
	cases := []struct {
		name     string
		failures []error // what the attempts return before succeeding
		want     error
		attempts int
	}{
		{"at once", nil, nil, 1},
		{"after passing trouble", []error{errPassing, errPassing}, nil, 3},
		{"a final error ends it", []error{errPassing, errFinal, errPassing}, errFinal, 2},
	}
	for _, c := range cases {
		attempts, notified := 0, 0
		err := retry.Do(context.Background(), quick, func() error {
			attempts++
			if attempts <= len(c.failures) {
				return c.failures[attempts-1]
			}
			return nil
		}, passing, func(error, time.Duration) { notified++ })
		if !errors.Is(err, c.want) || err == nil && c.want != nil || attempts != c.attempts {
			t.Errorf("%s: %v after %d attempts, want %v after %d", c.name, err, attempts, c.want, c.attempts)
		}
		if notified != c.attempts-1 {
			t.Errorf("%s: notified %d times, want once per retried failure (%d)", c.name, notified, c.attempts-1)
		}
	}
}

func TestDoEndsWithTheContextOrWhenThePolicyGivesUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	err := retry.Do(ctx, quick, func() error {
		if attempts++; attempts == 3 {
			cancel()
		}
		return errPassing
	}, passing, nil)
	if !errors.Is(err, context.Canceled) || attempts != 3 {
		t.Errorf("cancelled: %v after %d attempts", err, attempts)
	}
	giveUp := quick
	giveUp.GiveUpAfter = 20 * time.Millisecond
	err = retry.Do(context.Background(), giveUp, func() error { return errPassing }, passing, nil)
	if !errors.Is(err, errPassing) {
		t.Errorf("given up: %v, want the last error", err)
	}
	if err := retry.Do(context.Background(), retry.Policy{}, func() error { return nil }, passing, nil); err == nil {
		t.Error("an invalid policy was run")
	}
}
