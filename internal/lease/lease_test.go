package lease_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/lease"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// setup starts a broker, provisions the lease bucket as the admin and
// returns its URL.
func setup(t *testing.T) string {
	t.Helper()
	b := testenv.Broker(t)
	testenv.Provision(t, testenv.Connect(t, b.URL()), broker.StreamOptions{})
	return b.URL()
}

// open returns the aggregator lease as holder, on a connection of its own
// (as the aggregator role), so that closing it is the holder's death.
func open(t *testing.T, url, holder string, tm lease.Timings) (*lease.Lease, *nats.Conn) {
	t.Helper()
	nc := testenv.ConnectAs(t, url, broker.RoleAggregator)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.Open(t.Context(), js, broker.LeaseBucket, broker.AggregatorLease, holder, tm)
	if err != nil {
		t.Fatal(err)
	}
	return l, nc
}

func TestOnlyOneOfTwoTakesTheLease(t *testing.T) {
	url := setup(t)
	a, _ := open(t, url, "a", lease.For(10*time.Second))
	b, _ := open(t, url, "b", lease.For(10*time.Second))
	ha, err := a.TryAcquire(t.Context())
	if err != nil || ha == nil {
		t.Fatalf("a: %v, %v; want the lease", ha, err)
	}
	hb, err := b.TryAcquire(t.Context())
	if err != nil || hb != nil {
		t.Fatalf("b: %v, %v; want nothing while a holds it", hb, err)
	}
	if who, err := b.Holder(t.Context()); err != nil || who != "a" {
		t.Errorf("holder %q (%v), want a", who, err)
	}
	if err := ha.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestRenewalsKeepTheLeaseBeyondItsTTL(t *testing.T) {
	url := setup(t)
	tm := lease.For(time.Second)
	a, _ := open(t, url, "a", tm)
	b, _ := open(t, url, "b", tm)
	ha, err := a.TryAcquire(t.Context())
	if err != nil || ha == nil {
		t.Fatalf("a: %v, %v", ha, err)
	}
	start := ha.Revision()
	took := time.Now()
	// Four renewals take a TTL: all along, the key must stay a's.
	testenv.Eventually(t, time.Minute, func() error {
		if hb, err := b.TryAcquire(t.Context()); hb != nil || err != nil {
			t.Fatalf("b took the lease (%v) while a renewed it", err)
		}
		if ha.Context().Err() != nil {
			t.Fatalf("a lost the lease it renewed: %v", context.Cause(ha.Context()))
		}
		if got := ha.Revision(); got < start+4 {
			return fmt.Errorf("a renewed up to revision %d, waiting for %d", got, start+4)
		}
		return nil
	})
	// The first renewal's wait began just before took: three whole waits at least.
	if held := time.Since(took); held < 3*tm.Renew {
		t.Errorf("four renewals within %s: renewing more often than every %s", held, tm.Renew)
	}
	if err := ha.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestAStandbyTakesOverOnlyAfterTheDeadHoldersDeadline(t *testing.T) {
	url := setup(t)
	tm := lease.For(time.Second)
	a, anc := open(t, url, "a", tm)
	b, _ := open(t, url, "b", tm)
	ha, err := a.TryAcquire(t.Context())
	if err != nil || ha == nil {
		t.Fatalf("a: %v, %v", ha, err)
	}
	// a's connection dies: it can renew no more.
	anc.Close()
	died := time.Now()
	// No renewal can be confirmed any more: this is a's last deadline.
	last := ha.Deadline()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	hb, err := b.Acquire(ctx, nil)
	if err != nil {
		t.Fatalf("b never took over: %v", err)
	}
	tookOver := time.Now()
	defer hb.Release(t.Context())
	// a stopped writing at its last deadline; b may write only after it.
	testenv.Eventually(t, time.Minute, func() error {
		if ha.Context().Err() == nil {
			return errors.New("a has not yet noticed it lost the lease")
		}
		return nil
	})
	if cause := context.Cause(ha.Context()); !errors.Is(cause, lease.ErrLost) {
		t.Errorf("a's lease ended with %v, want ErrLost", cause)
	}
	if ha.Holds() {
		t.Error("a still holds a lost lease")
	}
	if !tookOver.After(last) {
		t.Errorf("b took over %s before a's last deadline: both could have written", last.Sub(tookOver))
	}
	t.Logf("takeover %s after the holder's connection closed (TTL %s)", tookOver.Sub(died).Round(time.Millisecond), tm.TTL)
}

func TestReleaseHandsTheLeaseOverAtOnce(t *testing.T) {
	url := setup(t)
	tm := lease.For(time.Hour) // a takeover by expiry would not come within the test
	a, _ := open(t, url, "a", tm)
	b, _ := open(t, url, "b", tm)
	ha, err := a.TryAcquire(t.Context())
	if err != nil || ha == nil {
		t.Fatalf("a: %v, %v", ha, err)
	}
	if err := ha.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cause := context.Cause(ha.Context()); !errors.Is(cause, lease.ErrReleased) || ha.Holds() {
		t.Errorf("released lease: cause %v, holds %v; want ErrReleased and not held", cause, ha.Holds())
	}
	hb, err := b.TryAcquire(t.Context())
	if err != nil || hb == nil {
		t.Fatalf("b after the release: %v, %v; want the lease", hb, err)
	}
	if err := hb.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestTheCounterRoleCannotTakeTheLease(t *testing.T) {
	url := setup(t)
	nc := testenv.ConnectAs(t, url, broker.RoleCounter)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.Open(t.Context(), js, broker.LeaseBucket, broker.AggregatorLease, "counter", lease.For(10*time.Second))
	if err != nil {
		t.Fatal(err) // looking the bucket up is a stream lookup, which it may do
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if h, err := l.TryAcquire(ctx); h != nil || err == nil {
		t.Fatalf("the counter took the lease (%v, %v)", h, err)
	}
	agg, _ := open(t, url, "aggregator", lease.For(10*time.Second))
	if who, err := agg.Holder(t.Context()); err != nil || who != "" {
		t.Errorf("after the counter's try the lease is held by %q (%v), want no one", who, err)
	}
}
