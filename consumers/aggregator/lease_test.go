package aggregator_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// logged waits until the aggregator has logged what n times.
func logged(t *testing.T, log *testenv.LogBuffer, what string, n int) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() error {
		if got := strings.Count(log.String(), what); got < n {
			return fmt.Errorf("%q logged %d times, waiting for %d", what, got, n)
		}
		return nil
	})
}

// The lease is held by someone else (an intruder writing the key without a
// TTL): the aggregator stands by without consuming, takes over when the key
// is deleted, stops when the key is taken from it, and takes over again.
func TestAnAggregatorWritesOnlyWhileItHoldsTheLease(t *testing.T) {
	p := prepare(t)
	ctx := t.Context()
	log := &testenv.LogBuffer{}
	var err error
	p.agg, err = chwriter.Setup(ctx, testConfig(), p.aggJS, p.conn, broker.StreamOptions{}, "", slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := p.js.KeyValue(ctx, broker.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, broker.AggregatorLease, []byte("intruder 1")); err != nil {
		t.Fatal(err)
	}
	p.run(t)
	logged(t, log, "standing by: another aggregator holds the lease", 1)
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	year := time.Now().In(events.WIB).Year()
	for i := 1; i <= 5; i++ {
		p.publish(t, line("activation", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	if n := p.count(t, "SELECT count() FROM ikd.events"); n != 0 {
		t.Fatalf("a standby wrote %d events", n)
	}

	if err := kv.Delete(ctx, broker.AggregatorLease); err != nil {
		t.Fatal(err)
	}
	logged(t, log, "took the aggregator lease", 1)
	p.settle(t)
	if got := p.city(t, "17.71", year).Activated; got != 5 {
		t.Fatalf("activated %d after the takeover, want 5", got)
	}

	if _, err := kv.Put(ctx, broker.AggregatorLease, []byte("intruder 2")); err != nil {
		t.Fatal(err)
	}
	logged(t, log, "lost the aggregator lease", 1)
	for i := 6; i <= 8; i++ {
		p.publish(t, line("activation", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	if n := p.count(t, "SELECT count() FROM ikd.events"); n != 5 {
		t.Fatalf("%d events in the warehouse after the lease was lost, want the 5 written before", n)
	}

	if err := kv.Delete(ctx, broker.AggregatorLease); err != nil {
		t.Fatal(err)
	}
	logged(t, log, "took the aggregator lease", 2)
	p.settle(t)
	if got := p.city(t, "17.71", year).Activated; got != 8 {
		t.Fatalf("activated %d after the second takeover, want 8", got)
	}
}
