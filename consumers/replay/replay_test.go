package replay_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/replay"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func setup(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	_, js := testenv.JetStream(t, testenv.Broker(t).URL())
	return ctx, js
}

// deadLetter stores a dead letter as the aggregator does.
func deadLetter(t *testing.T, ctx context.Context, js jetstream.JetStream, reason, subject string, origSeq uint64, payload string) {
	t.Helper()
	m := nats.NewMsg(contract.DeadLetterSubject(reason))
	m.Data = []byte(payload)
	m.Header.Set(contract.HeaderReason, reason)
	m.Header.Set(contract.HeaderDetail, "test")
	m.Header.Set(contract.HeaderOriginalSubject, subject)
	m.Header.Set(contract.HeaderOriginalSeq, strconv.FormatUint(origSeq, 10))
	m.Header.Set(nats.MsgIdHdr, "dl-"+strconv.FormatUint(origSeq, 10))
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	return testenv.StreamInfo(t, js, stream).State.Msgs
}

func TestReplayRepublishesWithFreshIDsAndDeletesDeadLetters(t *testing.T) {
	ctx, js := setup(t)
	const subject = "ikd.v1.activation.17.71"
	// The originals are in the event stream with their own ids; a replay
	// under those ids would be dropped as duplicates.
	for i := 1; i <= 3; i++ {
		if _, err := js.Publish(ctx, subject, []byte("event-"+strconv.Itoa(i)), jetstream.WithMsgID("ev-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter(t, ctx, js, "future_time", subject, 1, "event-1")
	deadLetter(t, ctx, js, "invalid_nik", subject, 2, "event-2")
	deadLetter(t, ctx, js, "future_time", subject, 3, "event-3")

	n, err := replay.Replay(ctx, js, replay.Filter{Reason: "future_time"}, nil)
	if err != nil || n != 2 {
		t.Fatalf("replay future_time: n=%d err=%v, want 2", n, err)
	}
	if got := msgs(t, js, broker.DeadLetterStream); got != 1 {
		t.Fatalf("dead letters left: %d, want 1", got)
	}
	if got := msgs(t, js, broker.EventsStream); got != 5 {
		t.Fatalf("events stream holds %d, want 3 originals + 2 replays", got)
	}
	s, _ := js.Stream(ctx, broker.EventsStream)
	for seq, want := range map[uint64][2]string{4: {"event-1", "replay-1"}, 5: {"event-3", "replay-3"}} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != want[0] || m.Header.Get(nats.MsgIdHdr) != want[1] || m.Subject != subject {
			t.Errorf("seq %d: %s %q id %q, want %s %q id %q", seq, m.Subject, m.Data, m.Header.Get(nats.MsgIdHdr), subject, want[0], want[1])
		}
	}

	n, err = replay.Replay(ctx, js, replay.Filter{}, nil)
	if err != nil || n != 1 {
		t.Fatalf("replay all: n=%d err=%v, want 1", n, err)
	}
	if got := msgs(t, js, broker.DeadLetterStream); got != 0 {
		t.Fatalf("dead letters left: %d, want 0", got)
	}
	start := time.Now()
	n, err = replay.Replay(ctx, js, replay.Filter{}, nil)
	if err != nil || n != 0 {
		t.Fatalf("replay of nothing: n=%d err=%v", n, err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("replay of an empty stream took %s", time.Since(start))
	}
	if got := msgs(t, js, broker.EventsStream); got != 6 {
		t.Fatalf("events stream holds %d, want 6", got)
	}
}

func TestReplayOfAnAbsentReasonReturnsAtOnce(t *testing.T) {
	ctx, js := setup(t)
	deadLetter(t, ctx, js, "invalid_nik", "ikd.v1.activation.17.71", 1, "x")
	start := time.Now()
	n, err := replay.Replay(ctx, js, replay.Filter{Reason: "future_time"}, nil)
	if err != nil || n != 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	if _, err := replay.Replay(ctx, js, replay.Filter{Reason: "a.b"}, nil); err == nil {
		t.Error("a reason with a dot was accepted")
	}
}
