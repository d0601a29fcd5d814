package publish

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events/eventstest"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// storedIDs returns the event ids the stream holds, in stream order, and
// whether each was stored as part of an atomic batch.
func storedIDs(t *testing.T, js jetstream.JetStream, stream string) (ids []string, batched int) {
	t.Helper()
	for _, msg := range testenv.StreamMessages(t, js, stream) {
		ids = append(ids, msg.Header.Get(jetstream.MsgIDHeader))
		if msg.Header.Get(batchIDHeader) != "" {
			batched++
		}
	}
	return ids, batched
}

func TestEventsTravelInAtomicBatchesInTheGivenOrder(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(map[bool]string{false: "concurrent batches", true: "ordered"}[ordered], func(t *testing.T) {
			e := testenv.Broker(t)
			_, js := testenv.JetStream(t, e.URL())
			// As a counter publishes: its role may publish events and nothing else.
			nc := testenv.ConnectAs(t, e.URL(), broker.RoleCounter)
			p := newPublisher(t, nc, Options{Batch: 100, Ordered: ordered})
			evs := eventstest.Activations("batched", 250)

			res, err := p.Publish(testContext(t), evs)
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if res != (Result{Published: 250}) {
				t.Errorf("result = %+v, want 250 published", res)
			}
			ids, batched := storedIDs(t, js, broker.EventsStream)
			if batched != len(evs) {
				t.Errorf("%d of %d events stored in atomic batches", batched, len(evs))
			}
			if !ordered {
				// Concurrent batches may land in any order; each is whole.
				return
			}
			for i, ev := range evs {
				if i >= len(ids) || ids[i] != ev.EventID {
					t.Fatalf("message %d is not %s: stream order %v…", i+1, ev.EventID, ids[:min(len(ids), 5)])
				}
			}
		})
	}
}

func TestAStreamWithoutAtomicPublishGetsEveryEventOneByOne(t *testing.T) {
	nc := testenv.Connect(t, testenv.Broker(t).URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"ikd.v1.>"}}
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, nc, Options{Batch: 50})

	res, err := p.Publish(testContext(t), eventstest.Activations("plain", 120))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if res != (Result{Published: 120}) {
		t.Errorf("result = %+v, want 120 published", res)
	}
	ids, batched := storedIDs(t, js, cfg.Name)
	if len(ids) != 120 || batched != 0 {
		t.Errorf("stream holds %d messages, %d of them batched; want 120, none batched", len(ids), batched)
	}
	if p.batching() {
		t.Error("the publisher still sends batches to a stream that refuses them")
	}
}
