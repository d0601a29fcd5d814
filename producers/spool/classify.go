package spool

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// noStream reports whether nothing answered the publish: a broker whose
// streams are not up yet, or a subject that no stream takes.
func noStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// outcome is what to do after one Publish of a batch.
type outcome struct {
	refused map[string]error // event id → why the broker will never take it
	retry   error            // a passing failure: send what is not settled again later
	settled int              // leading events acknowledged or refused: the cursor may pass them
	split   bool             // the whole call was refused: narrow the batch to find the event
}

// judge sorts the failures of one Publish of evs, which returned res and err.
func judge(evs []events.Event, res publish.Result, err error) outcome {
	var pe *publish.Error
	if err != nil && !errors.As(err, &pe) {
		return judgeCall(evs, err)
	}
	o := outcome{refused: map[string]error{}, settled: len(evs)}
	if pe == nil {
		return o
	}
	index := make(map[string]int, len(evs))
	for i, ev := range evs {
		index[ev.EventID] = i
	}
	// Acks in the same call show the broker and its streams up: "no response
	// from stream" then means that no stream takes the event's subject, and
	// the publisher has already retried it for as long as it was told to.
	up := res.Published+res.Duplicates > 0
	for _, fl := range pe.Failures {
		switch i := index[fl.EventID]; {
		case publish.Refused(fl.Err) || up && noStream(fl.Err):
			o.refused[fl.EventID] = fl.Err
		case i < o.settled:
			o.settled, o.retry = i, fl.Err
		}
	}
	return o
}

// judgeCall judges an error that names no event, from a Sender other than
// *publish.Publisher: it concerns the whole call.
func judgeCall(evs []events.Event, err error) outcome {
	switch {
	case !publish.Refused(err):
		return outcome{retry: err}
	case len(evs) > 1:
		return outcome{split: true}
	default:
		return outcome{refused: map[string]error{evs[0].EventID: err}, settled: 1}
	}
}
