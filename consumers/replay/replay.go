// Package replay sends dead letters back to the event stream: each original
// payload goes to its original subject again, and its dead letter is deleted
// once the broker has acknowledged the republish. A replayed event that is
// valid now is counted once (the warehouse counts residents as sets); one that
// is still invalid is dead-lettered again by the aggregator.
package replay

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/deadletters"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
)

// MsgIDPrefix starts the Nats-Msg-Id of a replayed event: "replay-<dead
// letter's stream sequence>". The original's id would be dropped by the
// broker as a duplicate while the duplicate window lasts; this one is new for
// each dead letter yet the same when one replay is retried.
const MsgIDPrefix = "replay-"

// HeaderReplayOf on a replayed event is the event stream sequence of the
// message that was dead-lettered (the dead letter's Ikd-Original-Seq), so
// that reconcile knows the original was superseded even when the payload
// cannot be read.
const HeaderReplayOf = "Ikd-Replay-Of"

// Filter selects the dead letters to replay; the zero Filter takes all.
type Filter struct {
	Reason string // only dead letters of this reason (Ikd-Reason), e.g. "invalid_nik"
}

func (f Filter) subject() (string, error) {
	if f.Reason == "" {
		return broker.DeadLetterPrefix + ".>", nil
	}
	if err := deadletters.CheckReason(f.Reason); err != nil {
		return "", fmt.Errorf("replay: %w", err)
	}
	return contract.DeadLetterSubject(f.Reason), nil
}

// Replay republishes the dead letters that were in IKD_DEADLETTER when it
// started and match filter, and returns how many it replayed. Dead letters
// arriving meanwhile (such as the replayed events failing again) are left for
// the next run. On error, the dead letters not yet replayed stay where they are.
func Replay(ctx context.Context, js jetstream.JetStream, filter Filter, logger *slog.Logger) (int, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	subject, err := filter.subject()
	if err != nil {
		return 0, err
	}
	stream, err := js.Stream(ctx, broker.DeadLetterStream)
	if err != nil {
		return 0, fmt.Errorf("replay: stream %s: %w", broker.DeadLetterStream, err)
	}
	n := 0
	letters := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}}
	_, err = broker.ReadStream(ctx, js, broker.DeadLetterStream, letters, func(msg jetstream.Msg, seq uint64) error {
		replayed, err := replayOne(ctx, js, stream, msg, seq, logger)
		if replayed {
			n++
		}
		return err
	})
	if n > 0 {
		logger.Info("dead letters replayed", "replayed", n, "reason", filter.Reason)
	}
	if err != nil {
		return n, fmt.Errorf("replay: %w", err)
	}
	return n, nil
}

func replayOne(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, msg jetstream.Msg, seq uint64, logger *slog.Logger) (bool, error) {
	subject := msg.Headers().Get(contract.HeaderOriginalSubject)
	if !strings.HasPrefix(subject, broker.EventsPrefix+".") {
		// Without a subject in the event stream there is nowhere to send it; a
		// person has to look at it.
		logger.Warn("dead letter without an original subject in the event stream; left in place", "seq", seq, "subject", subject)
		return false, nil
	}
	out := nats.NewMsg(subject)
	out.Data = msg.Data()
	out.Header.Set(nats.MsgIdHdr, MsgIDPrefix+strconv.FormatUint(seq, 10))
	if orig := msg.Headers().Get(contract.HeaderOriginalSeq); orig != "" {
		out.Header.Set(HeaderReplayOf, orig)
	}
	if _, err := js.PublishMsg(ctx, out); err != nil {
		return false, fmt.Errorf("replay: republish dead letter %d to %s: %w", seq, subject, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		// Replaying it again later republishes it with the same id (dropped
		// inside the duplicate window, absorbed by the warehouse's sets after).
		return false, fmt.Errorf("replay: delete replayed dead letter %d: %w", seq, err)
	}
	return true, nil
}
