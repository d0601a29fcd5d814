package aggregator

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// Headers a dead letter carries beside the original payload.
const (
	HeaderReason          = "Ikd-Reason"
	HeaderDetail          = "Ikd-Detail"
	HeaderOriginalSubject = "Ikd-Original-Subject"
	HeaderOriginalSeq     = "Ikd-Original-Seq"
)

// DeadLetterSubject is where messages failing for reason go.
func DeadLetterSubject(reason string) string { return broker.DeadLetterPrefix + "." + reason }

// deadLetter stores the message's original payload with the reason in the
// dead-letter stream, then terminates it. The dead letter's message id is
// the original's stream sequence, so that a message redelivered before its
// Term arrived is stored once.
func (a *Aggregator) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason, detail string) {
	dl := nats.NewMsg(DeadLetterSubject(reason))
	dl.Data = msg.Data()
	dl.Header.Set(HeaderReason, reason)
	dl.Header.Set(HeaderDetail, detail)
	dl.Header.Set(HeaderOriginalSubject, msg.Subject())
	dl.Header.Set(HeaderOriginalSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(nats.MsgIdHdr, "dl-"+strconv.FormatUint(meta.Sequence.Stream, 10))
	if _, err := a.js.PublishMsg(ctx, dl); err != nil {
		// Without its dead letter the message must not be terminated: it
		// comes back and is judged again.
		if n := a.deadLetterFailures.Add(1); sampled(n) {
			a.logger.Error("cannot store dead letter; the message will come back", "seq", meta.Sequence.Stream,
				"reason", reason, "failures_total", n, "err", err)
		}
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if n := a.Stats.DeadLettered.Add(1); sampled(n) {
		a.logger.Warn("message dead-lettered", "reason", reason, "detail", detail, "subject", msg.Subject(), "dead_lettered_total", n)
	}
	_ = msg.TermWithReason(reason)
}
