package aggregator

import (
	"errors"
	"fmt"
	"time"
)

// The aggregator's decisions, apart from the broker and the warehouse: each
// is a function of what happened, tested without a server.

// Class is what a failed write blames, which decides what the aggregator
// does next: wait, call an operator, or set the rows aside.
type Class int

const (
	// ClassTransient is trouble that goes away by itself: the network, a
	// server restarting or overloaded. The batch is held and retried.
	ClassTransient Class = iota + 1
	// ClassSetup is trouble that refuses every row alike until an operator
	// acts (a missing table, wrong credentials). The rows are not at fault: the batch
	// is held and retried, and the trouble logged as an error.
	ClassSetup
	// ClassRefused is the rows' own trouble: the same rows are refused the
	// same way every time. The culprit is isolated and, in the end,
	// dead-lettered.
	ClassRefused
)

func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassSetup:
		return "setup"
	case ClassRefused:
		return "refused"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// WriteError is an error of an EventWriter with its class.
type WriteError struct {
	Class Class
	Err   error
}

func (e *WriteError) Error() string { return e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// classOf is the class of a failed write; an error that does not say is
// taken as the rows' own, as the warehouse takes an error it does not know.
func classOf(err error) Class {
	var we *WriteError
	if errors.As(err, &we) {
		return we.Class
	}
	return ClassRefused
}

// retryable says whether a failed write attempt is tried again while the
// batch is held: yes unless the rows themselves were refused.
func retryable(err error) bool {
	return err != nil && classOf(err) != ClassRefused
}

// verdict is the choice for a batch once its write has ended.
type verdict int

const (
	acknowledge verdict = iota + 1 // written: acknowledge every message
	sendBack                       // shutting down unwritten: give every message back at once
	halve                          // refused: write each half on its own to isolate the culprit
	refuseOne                      // refused, and the batch is one event: count the refusal
)

func (v verdict) String() string {
	return [...]string{"", "acknowledge", "send back", "halve", "refuse one"}[v]
}

// judgeBatch decides for a batch of size events whose write ended with err
// (nil: written), while stopping says whether the aggregator is shutting
// down. A written batch is acknowledged even then; an unwritten one is never.
func judgeBatch(err error, stopping bool, size int) verdict {
	switch {
	case err == nil:
		return acknowledge
	case stopping || retryable(err):
		// The write ended unfinished: only shutdown ends the retries.
		return sendBack
	case size > 1:
		return halve
	}
	return refuseOne
}

// refusal is the choice for one event the warehouse refused.
type refusal struct {
	deadLetter bool          // it has used its tries: dead-letter it with the warehouse's reason
	delay      time.Duration // else: send it back to come again after this
}

// maxRefusedDelay caps the delay before a refused event comes back.
const maxRefusedDelay = 5 * time.Minute

// judgeRefusal decides for an event at its n-th refusal (n >= 1): it is
// dead-lettered at the maxDeliver-th, else sent back after a delay that
// starts at first and doubles with each refusal, up to maxRefusedDelay.
func judgeRefusal(n, maxDeliver int, first time.Duration) refusal {
	if n >= maxDeliver {
		return refusal{deadLetter: true}
	}
	return refusal{delay: min(first<<min(n-1, 20), maxRefusedDelay)}
}
