package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// fleet is a set of aggregator processes sharing the durable. An aggregator
// must not exit by itself under any fault: one that does fails the test, and
// is started again so that the test still drains and reports the rest.
type fleet struct {
	e     *env
	mu    sync.Mutex
	procs []*proc
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
					e.t.Errorf("aggregator exited by itself (%v); output tail:\n%s", err, tail(p.out.String(), 1500))
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
		// A random moment of the drain, named by how much of it is done.
		e.rowsBeyond(base + uint64(rng.IntN(size/2)))
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
	e.verify("aggregator killed", d, faultsf("%d SIGKILLs (%d mid-drain)", kills, midDrain))
}

// b. Three aggregator processes consume at once through the same durable.
func TestFaultConcurrentAggregators(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	d := makeDataset(t, eventCount(), 2)
	e.fleet(3)
	e.publish(t.Context(), d.events)
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("three aggregators", d, faultsf("3 processes on one durable"))
}

// c. The warehouse becomes unreachable during ingestion (a proxy in front of
// it closes its listener and connections), then comes back on the same port.
// No row may land while it is away, and every event must land after.
func TestFaultWarehouseOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second // longer than the aggregator's AckWait of 3s
	}
	e := newEnv(t, broker.StreamOptions{})
	d := makeDataset(t, eventCount(), 3)
	p := newProxy(t, e.dsn[len("http://"):])
	e.dsn = "http://" + p.addr // what the aggregator is given; the test keeps its own connection
	ctx := t.Context()
	third := len(d.events) / 3
	e.publish(ctx, d.events[:third])
	f := e.fleet(1)
	e.rowsBeyond(0)

	p.off()
	e.publish(ctx, d.events[third:])
	// Once the aggregator has failed a write, nothing it sent before the
	// outage is still on its way.
	testenv.Eventually(t, time.Minute, func() error {
		if !strings.Contains(f.output(0), "warehouse unavailable") {
			return fmt.Errorf("the aggregator has not yet met the outage")
		}
		return nil
	})
	before := e.distinctEvents()
	time.Sleep(outage) // the fault's length, not a wait for anything
	during := e.distinctEvents()
	if during != before {
		t.Errorf("%d rows landed while the warehouse was unreachable", during-before)
	}
	if during >= uint64(len(d.events)) {
		t.Errorf("the outage fell after the drain: %d of %d events already written", during, len(d.events))
	}
	p.on()
	back := time.Now()
	e.rowsBeyond(during)
	resumed := time.Since(back)
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("warehouse outage", d, faultsf("1 outage of %s (%d events in the warehouse at its start, %d at its end), first new rows %s after it",
		outage, before, during, resumed.Round(time.Millisecond)))
}

// d. The broker is SIGKILLed mid-drain and started again on the same
// directory and port; the aggregator reconnects and loses nothing.
func TestFaultBrokerKilledMidDrain(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	// Small batches make the drain last long enough to be interrupted.
	e.extraEnv = []string{"IKD_AGGREGATOR_BATCH_SIZE=50"}
	d := makeDataset(t, eventCount(), 4)
	ctx := t.Context()
	half := len(d.events) / 2
	e.publish(ctx, d.events[:half])
	f := e.fleet(1)
	e.rowsBeyond(0)
	e.killBroker(func() error {
		if !strings.Contains(f.output(0), "disconnected from NATS") {
			return fmt.Errorf("the aggregator has not yet seen the broker go")
		}
		return nil
	})
	before := e.distinctEvents()
	if before >= uint64(half) {
		t.Errorf("the broker was killed after the drain: all %d published events were already written", half)
	}
	e.rowsBeyond(before)
	e.publish(ctx, d.events[half:])
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("broker killed", d, faultsf("1 broker SIGKILL with %d of %d published events in the warehouse", before, half))
}

// e. A slice of the events is published again after the duplicate window
// has passed (a lost publish ack, a counter resending late): the broker
// stores them again and the aggregator receives and writes them again, and
// the counts do not change.
func TestFaultRepublishOutsideDuplicateWindow(t *testing.T) {
	window := time.Second
	e := newEnv(t, broker.StreamOptions{DuplicateWindow: window})
	d := makeDataset(t, eventCount(), 5)
	ctx := t.Context()
	e.fleet(1)
	e.publish(ctx, d.events)
	e.drained(len(d.events), drainTimeout(len(d.events)))
	slice := d.events[:len(d.events)/5]
	// Under load the publisher itself may resend an event whose ack came
	// late, and with a 1 s window the broker stores that resend too: the
	// slice is counted from what the stream held before it.
	before := e.streamMessages()
	// The slice's last event was published last: once the broker takes it
	// again, the window has passed for the whole slice.
	var res publish.Result
	testenv.Eventually(t, time.Minute, func() error {
		res = e.publish(ctx, slice[len(slice)-1:])
		if res.Published != 1 {
			return fmt.Errorf("the broker still drops the resend as a duplicate")
		}
		return nil
	})
	res = e.publish(ctx, slice[:len(slice)-1])
	if res.Published != len(slice)-1 {
		t.Errorf("republish after the window: %d stored, %d duplicates; want all %d stored again", res.Published, res.Duplicates, len(slice)-1)
	}
	stored := e.streamMessages()
	if stored < before+uint64(len(slice)) {
		t.Errorf("the stream grew from %d to %d messages, want at least %d more: the slice again", before, stored, len(slice))
	}
	// Drained: the consumer has delivered and the aggregator acknowledged
	// every message, the resent ones too, after writing them.
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("republish outside the duplicate window", d, faultsf("%d events republished after the %s window, %d messages in the stream",
		len(slice), window, stored))
}

// rowsBeyond waits until the warehouse holds more than n distinct events.
func (e *env) rowsBeyond(n uint64) {
	e.t.Helper()
	testenv.Eventually(e.t, 2*time.Minute, func() error {
		if got := e.distinctEvents(); got <= n {
			return fmt.Errorf("the warehouse holds %d distinct events, waiting for more than %d", got, n)
		}
		return nil
	})
}

// streamMessages is how many messages the event stream holds.
func (e *env) streamMessages() uint64 {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), broker.EventsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// output is the output so far of aggregator i.
func (f *fleet) output(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[i].out.String()
}
