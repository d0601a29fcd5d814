package publish

import (
	"fmt"
	"strings"
)

// namedFailures is how many failed events an error message names; the rest
// are counted, so that a broker outage does not print a million ids.
const namedFailures = 5

// Failure is an event that was not published and the error of its last
// attempt.
type Failure struct {
	EventID string
	Err     error
}

// Error is returned by Publish when some events were not published.
type Error struct {
	Failures []Failure
	Total    int // events given to Publish
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "publish: %d of %d events not published", len(e.Failures), e.Total)
	for i, f := range e.Failures {
		if i == namedFailures {
			fmt.Fprintf(&b, "; and %d more", len(e.Failures)-namedFailures)
			break
		}
		fmt.Fprintf(&b, "; event %s: %v", f.EventID, f.Err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As the cause of each failure, such as
// context.Canceled.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}
