package testenv

import (
	"errors"
	"testing"
	"time"
)

// Eventually polls cond until it returns nil and fails the test with cond's
// last error when within has passed. Tests wait for conditions this way,
// never for durations: on a busy machine the condition only comes later.
// within is a bound against hanging forever, not an expectation of speed.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	if err := Await(within, cond); err != nil {
		t.Fatal(err)
	}
}

// Await is Eventually for callers that must not stop the test from their
// goroutine: it returns cond's last error once within has passed.
func Await(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	pause := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return &timeoutError{within: within, last: err}
		}
		time.Sleep(pause)
		pause = min(2*pause, 250*time.Millisecond)
	}
}

type timeoutError struct {
	within time.Duration
	last   error
}

func (e *timeoutError) Error() string {
	return "still not so after " + e.within.String() + ": " + e.last.Error()
}

func (e *timeoutError) Unwrap() error { return e.last }

// Holds turns a yes-or-no condition into one for Eventually, failing with
// what it waits for.
func Holds(what string, cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errors.New("waiting for " + what)
	}
}
