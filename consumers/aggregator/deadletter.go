package aggregator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/logsample"
	"github.com/ikd-pipeline/ikd/internal/nik"
)

// deadLetter stores the message's original payload with the reason in the
// dead-letter stream, then terminates it. The dead letter's message id is
// the original's stream sequence, so that a message redelivered before its
// Term arrived is stored once. A NIK never rests in clear: a payload or
// subject holding a run that could be one is stored redacted, and the
// original is erased from the event stream.
func (a *Aggregator) deadLetter(ctx context.Context, msg Message, meta *jetstream.MsgMetadata, reason, detail string) {
	data, redacted := events.Redact(msg.Data())
	subject := nik.RedactString(msg.Subject())
	if subject != msg.Subject() {
		redacted++
	}
	detail = nik.RedactString(detail)
	dl := nats.NewMsg(contract.DeadLetterSubject(reason))
	dl.Data = data
	dl.Header.Set(contract.HeaderReason, reason)
	dl.Header.Set(contract.HeaderDetail, detail)
	dl.Header.Set(contract.HeaderOriginalSubject, subject)
	if redacted > 0 {
		dl.Header.Set(contract.HeaderRedacted, strconv.Itoa(redacted))
	}
	dl.Header.Set(contract.HeaderOriginalSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(nats.MsgIdHdr, "dl-"+strconv.FormatUint(meta.Sequence.Stream, 10))
	if _, err := a.js.PublishMsg(ctx, dl); err != nil {
		// Without its dead letter the message must not be terminated: it
		// comes back and is judged again.
		if n := a.deadLetterFailures.Add(1); logsample.Due(n) {
			a.logger.Error("cannot store dead letter; the message will come back", "seq", meta.Sequence.Stream,
				"reason", reason, "failures_total", n, "err", err)
		}
		_ = msg.NakWithDelay(time.Second)
		return
	}
	a.metrics.deadLettered.WithLabelValues(reason).Inc()
	if n := a.Stats.DeadLettered.Add(1); logsample.Due(n) {
		a.logger.Warn("message dead-lettered", "reason", reason, "detail", detail, "subject", subject, "dead_lettered_total", n)
	}
	_ = msg.TermWithReason(reason)
	if redacted > 0 {
		a.erase(ctx, meta.Sequence.Stream)
	}
}

// erase overwrites and removes a message that may hold a NIK from the event
// stream, once its redacted dead letter is stored.
func (a *Aggregator) erase(ctx context.Context, seq uint64) {
	stream, err := a.js.Stream(ctx, contract.EventsStream)
	if err == nil {
		err = stream.SecureDeleteMsg(ctx, seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		a.logger.Error("cannot erase a message that may hold a NIK from the event stream; delete it by hand",
			"stream", contract.EventsStream, "seq", seq, "command", fmt.Sprintf("nats stream rmm %s %d -f", contract.EventsStream, seq), "err", err)
	}
}
