package clusterfaults_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// A follower misses a stretch of the stream while it is down; reads of the
// stream started while it catches up, whose consumer the cluster may place
// on it, still return every message. (reconcile's read once returned none,
// or part, of IKD_EVENTS here.)
func TestStreamReadWhileAFollowerCatchesUpIsComplete(t *testing.T) {
	c := startCluster(t)
	js, err := jetstream.New(testenv.Connect(t, c.urls()))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{Replicas: 3})...)
	})
	total := 20_000
	if testing.Short() {
		total = 5_000
	}
	published := publishAll(t, js, "before", 1_000)
	_, follower := c.leader(js, broker.EventsStream)
	follower.kill()
	published += publishAll(t, js, "while-down", total)

	c.launch(follower)
	giveUp := time.Now().Add(3 * time.Minute)
	reads, early := 0, 0
	for caughtUp := false; !caughtUp || reads < 3; reads++ {
		if time.Now().After(giveUp) {
			t.Fatalf("%s has not caught up after %d reads: %v", follower.name, reads, healthz(follower))
		}
		caughtUp = healthz(follower) == nil // before the read: it may end in between
		if !caughtUp {
			early++
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		n, err := broker.ReadStream(ctx, js, broker.EventsStream, jetstream.OrderedConsumerConfig{HeadersOnly: true},
			func(jetstream.Msg, uint64) error { return nil })
		cancel()
		if err != nil {
			t.Fatalf("read %d: %v", reads+1, err)
		}
		if n != published {
			t.Fatalf("read %d (%s caught up: %v) returned %d of %d messages; the nodes' copies: %s",
				reads+1, follower.name, caughtUp, n, published, c.copies(broker.EventsStream))
		}
	}
	t.Logf("%d reads of %d messages each, %d of them begun before %s had caught up", reads, published, early, follower.name)
}

// publishAll publishes n small messages to IKD_EVENTS, each with a message
// ID naming batch, and returns n once every one is acknowledged. Messages
// whose acknowledgement was lost are published again: the client may be on
// the node the test has just killed, and the stream's duplicate window keeps
// a message published twice once.
func publishAll(t *testing.T, js jetstream.JetStream, batch string, n int) int {
	t.Helper()
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	giveUp := time.Now().Add(2 * time.Minute)
	for round := 1; len(pending) > 0; round++ {
		if time.Now().After(giveUp) {
			t.Fatalf("%d of %d publishes of %s not acknowledged after %d rounds", len(pending), n, batch, round-1)
		}
		if round > 1 { // the publishes failed at once, or timed out: let the client reconnect
			t.Logf("publishing %d of %d messages of %s again (round %d)", len(pending), n, batch, round)
			testenv.Eventually(t, time.Minute, func() error {
				if !js.Conn().IsConnected() {
					return fmt.Errorf("not connected: %v", js.Conn().Status())
				}
				return nil
			})
		}
		pending = publishRound(js, batch, pending)
	}
	return n
}

// publishRound publishes the messages numbered in ids, a window at a time,
// and returns those not acknowledged.
func publishRound(js jetstream.JetStream, batch string, ids []int) (failed []int) {
	const window = 1_000 // in flight at once, below the client's limit
	for from := 0; from < len(ids); from += window {
		part := ids[from:min(from+window, len(ids))]
		acks := make([]jetstream.PubAckFuture, 0, len(part))
		for _, i := range part {
			a, err := js.PublishAsync(fmt.Sprintf("%s.read.%d", broker.EventsPrefix, i%50), []byte("x"),
				jetstream.WithMsgID(fmt.Sprintf("%s-%d", batch, i)))
			if err != nil {
				break
			}
			acks = append(acks, a)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
		}
		for j, i := range part {
			if j >= len(acks) || !acknowledged(acks[j]) {
				failed = append(failed, i)
			}
		}
	}
	return failed
}

func acknowledged(a jetstream.PubAckFuture) bool {
	select {
	case <-a.Ok():
		return true
	default:
		return false
	}
}

// healthz is nil once n's monitoring says JetStream is up and n has caught
// up with every stream it holds.
func healthz(n *node) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /healthz answers %s", n.name, resp.Status)
	}
	return nil
}
