package faults_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// fleet is a set of aggregator processes sharing the durable, restarted by
// the fleet whenever one exits by itself.
type fleet struct {
	e     *env
	mu    sync.Mutex
	procs []*proc
	exits atomic.Int64
	stop  context.CancelFunc
	done  chan struct{}
}

func (e *env) fleet(n int) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{e: e, stop: cancel, done: make(chan struct{})}
	for range n {
		f.procs = append(f.procs, e.start())
	}
	go func() {
		defer close(f.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			f.mu.Lock()
			for i, p := range f.procs {
				if err, ok := p.exited(); ok && ctx.Err() == nil {
					f.exits.Add(1)
					e.t.Logf("aggregator exited by itself (%v); restarting it. Output tail:\n%s", err, tail(p.out.String(), 1500))
					f.procs[i] = e.start()
				}
			}
			f.mu.Unlock()
		}
	}()
	e.t.Cleanup(f.shutdown)
	return f
}

// kill SIGKILLs process i and starts a new one in its place.
func (f *fleet) kill(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs[i].kill()
	f.procs[i] = f.e.start()
}

func (f *fleet) shutdown() {
	f.stop()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.procs {
		p.stop()
	}
}

func drainTimeout(n int) time.Duration {
	return 2*time.Minute + time.Duration(n)*5*time.Millisecond
}

// a. The aggregator is SIGKILLed at random moments while it drains and
// started again each time. The events come in chunks; each kill falls at a
// random moment after the rows of the current chunk start landing.
func TestFaultAggregatorKilledWhileDraining(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	// Small batches make the drain last long enough to be interrupted.
	e.extraEnv = []string{"IKD_AGGREGATOR_BATCH_SIZE=100"}
	d := makeDataset(t, eventCount(), 1)
	ctx := t.Context()
	f := e.fleet(1)
	rng := rand.New(rand.NewPCG(7, 7))
	const chunks = 6
	size := (len(d.events) + chunks - 1) / chunks
	kills, midDrain := 0, 0
	for i := 0; i < len(d.events); i += size {
		base := e.distinctEvents()
		e.publish(ctx, d.events[i:min(i+size, len(d.events))])
		sent := uint64(min(i+size, len(d.events)))
		waitFor(t, 2*time.Minute, func() bool { return e.distinctEvents() > base })
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		at := e.distinctEvents()
		f.kill(0)
		kills++
		if at < sent {
			midDrain++
		}
		t.Logf("kill %d: SIGKILL with %d of %d published events in the warehouse", kills, at, sent)
	}
	if midDrain < 3 {
		t.Errorf("only %d of %d kills fell while the aggregator was draining, want at least 3", midDrain, kills)
	}
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("aggregator killed", d, faultsf("%d SIGKILLs (%d mid-drain), %d self-exits", kills, midDrain, f.exits.Load()))
}

// b. Three aggregator processes consume at once through the same durable.
func TestFaultConcurrentAggregators(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	d := makeDataset(t, eventCount(), 2)
	f := e.fleet(3)
	e.publish(t.Context(), d.events)
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("three aggregators", d, faultsf("3 processes on one durable, %d self-exits", f.exits.Load()))
}

// c. The warehouse becomes unreachable during ingestion (a proxy in front of
// it closes its listener and connections), then comes back on the same port.
func TestFaultWarehouseOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	e := newEnv(t, broker.StreamOptions{})
	d := makeDataset(t, eventCount(), 3)
	p := newProxy(t, e.dsn[len("http://"):])
	e.dsn = "http://" + p.addr // what the aggregator is given; the test keeps its own connection
	ctx := t.Context()
	third := len(d.events) / 3
	e.publish(ctx, d.events[:third])
	f := e.fleet(1)
	waitFor(t, 2*time.Minute, func() bool { return e.distinctEvents() > 0 })

	p.off()
	down := time.Now()
	before := e.distinctEvents()
	e.publish(ctx, d.events[third:])
	time.Sleep(time.Until(down.Add(outage)))
	during := e.distinctEvents()
	p.on()
	back := time.Now()
	waitFor(t, 30*time.Second, func() bool { return e.distinctEvents() > during })
	resumed := time.Since(back)
	if resumed > 5*time.Second {
		t.Errorf("first new rows %s after the warehouse came back, want under 5s", resumed)
	}
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("warehouse outage", d, faultsf("1 outage of %s (%d events in the warehouse at its start, %d at its end), first new rows %s after it, %d self-exits",
		outage, before, during, resumed.Round(time.Millisecond), f.exits.Load()))
}

// d. The broker shuts down mid-drain and starts again on the same directory
// and port.
func TestFaultBrokerRestart(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	d := makeDataset(t, eventCount(), 4)
	ctx := t.Context()
	half := len(d.events) / 2
	e.publish(ctx, d.events[:half])
	f := e.fleet(1)
	waitFor(t, 2*time.Minute, func() bool { return e.distinctEvents() > 0 })
	before := e.distinctEvents()
	e.restartBroker(2 * time.Second)
	after := e.distinctEvents()
	e.publish(ctx, d.events[half:])
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("broker restart", d, faultsf("1 broker restart (%d events in the warehouse before, %d after), %d self-exits", before, after, f.exits.Load()))
}

// e. A slice of the events is published again after the duplicate window
// has passed (a lost publish ack, a counter resending late): the broker
// stores them again, the counts do not change.
func TestFaultRepublishOutsideDuplicateWindow(t *testing.T) {
	window := time.Second
	e := newEnv(t, broker.StreamOptions{DuplicateWindow: window})
	d := makeDataset(t, eventCount(), 5)
	ctx := t.Context()
	f := e.fleet(1)
	e.publish(ctx, d.events)
	e.drained(len(d.events), drainTimeout(len(d.events)))
	time.Sleep(2 * window)
	slice := d.events[:len(d.events)/5]
	res := e.publish(ctx, slice)
	if res.Published != len(slice) {
		t.Errorf("republish after the window: %d stored, %d duplicates; want all %d stored again", res.Published, res.Duplicates, len(slice))
	}
	// Wait for the consumer to settle the republished messages too.
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("republish outside the duplicate window", d, faultsf("%d events republished after the %s window (%d stored again, %d duplicates), %d self-exits",
		len(slice), window, res.Published, res.Duplicates, f.exits.Load()))
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
