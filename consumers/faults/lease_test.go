package faults_test

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/lease"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// What the aggregator logs when the lease changes hands (consumers/aggregator).
const (
	tookLease     = "took the aggregator lease"
	lostLease     = "lost the aggregator lease"
	releasedLease = "released the aggregator lease"
	standingBy    = "standing by: another aggregator holds the lease"
)

// leaseEventCount is how many events each lease fault drives: what they
// show is who writes, so under -short a third of the others' suffices.
func leaseEventCount() int {
	if testing.Short() && !chaos() {
		return eventCount() / 3
	}
	return eventCount()
}

// leaseTakes returns the times at which process out's log says it took the
// lease.
func leaseTakes(out string) []time.Time {
	var at []time.Time
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, tookLease) {
			continue
		}
		field, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if t, err := time.Parse(time.RFC3339Nano, field); err == nil {
			at = append(at, t)
		}
	}
	return at
}

// holds reports whether a process's log says it holds the lease now: it
// took it more often than it lost or released it.
func holds(out string) bool {
	return strings.Count(out, tookLease) > strings.Count(out, lostLease)+strings.Count(out, releasedLease)
}

// holder waits until exactly one process of the fleet holds the lease and
// returns its index.
func (f *fleet) holder() int {
	f.e.t.Helper()
	var which int
	f.e.eventually(func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		i, err := f.holding()
		which = i
		return err
	})
	return which
}

// holding returns the index of the one process that holds the lease; f.mu
// is held.
func (f *fleet) holding() (int, error) {
	var holding []int
	for i, p := range f.procs {
		if holds(p.out.String()) {
			holding = append(holding, i)
		}
	}
	if len(holding) != 1 {
		return 0, fmt.Errorf("aggregators %v hold the lease, waiting for exactly one", holding)
	}
	return holding[0], nil
}

// replaceHolder waits until one process holds the lease, ends it with end
// (SIGKILL, SIGTERM), starts a new one in its place, and returns the ended
// one's output and when end began. The holder is looked up and ended under
// one lock: a lease that changed hands just before still ends its holder.
func (f *fleet) replaceHolder(end func(*proc)) (out string, at time.Time) {
	f.e.t.Helper()
	f.e.eventually(func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		i, err := f.holding()
		if err != nil {
			return err
		}
		at = time.Now()
		end(f.procs[i])
		out = f.procs[i].out.String()
		f.procs[i] = f.e.start()
		return nil
	})
	return out, at
}

// takenAfter waits until a process logs that it took the lease after since,
// and returns when it did.
func (f *fleet) takenAfter(since time.Time) time.Time {
	f.e.t.Helper()
	var at time.Time
	err := testenv.Await(2*time.Minute, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.procs {
			for _, t := range leaseTakes(p.out.String()) {
				if t.After(since) {
					at = t
					return nil
				}
			}
		}
		return errors.New("no aggregator has taken the lease yet")
	})
	if err != nil {
		var outs strings.Builder
		for i := range f.procs {
			fmt.Fprintf(&outs, "--- aggregator %d:\n%s\n", i, tail(f.output(i), 2000))
		}
		f.e.t.Fatalf("%v; outputs:\n%s", err, outs.String())
	}
	return at
}

// a'. Two aggregator replicas start at the same moment against a backlog
// in which residents come back (reactivations, enrolment and activation):
// one takes the lease and writes, the other stands by throughout, and every
// resident is counted once.
func TestFaultTwoReplicasStartedAtOnceCountEachResidentOnce(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	// Long enough that no renewal on a loaded machine comes too late: the
	// test asserts that the lease never changed hands.
	e.extraEnv = []string{"IKD_AGGREGATOR_LEASE_TTL=10s"}
	d := makeDataset(t, leaseEventCount(), 11)
	ctx := t.Context()
	half := len(d.events) / 2
	e.publish(ctx, d.events[:half])
	f := e.fleet(2)
	e.publish(ctx, d.events[half:])
	e.drained(len(d.events), drainTimeout(len(d.events)))
	writer := f.holder()
	standby := 1 - writer
	// A small backlog may be drained before the other process is through
	// its start (it waits its turn to check the schema): wait for it to
	// stand by, then for nothing to have changed hands.
	if err := testenv.Await(2*time.Minute, testenv.Holds("the other process stands by", func() bool {
		return strings.Contains(f.output(standby), standingBy)
	})); err != nil {
		t.Errorf("%v; output tail:\n%s", err, tail(f.output(standby), 2000))
	}
	if out := f.output(standby); strings.Contains(out, tookLease) {
		t.Errorf("the standby took the lease; output tail:\n%s", tail(out, 2000))
	}
	if out := f.output(writer); strings.Count(out, tookLease) != 1 || strings.Contains(out, lostLease) {
		t.Errorf("the writer took the lease %d times and lost it %d times, want once and never", strings.Count(out, tookLease), strings.Count(out, lostLease))
	}
	e.verify("two replicas at once", d, faultsf("2 processes started together; process %d wrote, the other stood by", writer))
}

// b'. The aggregator holding the lease is SIGKILLed mid-drain, with a
// standby running: the standby takes over once the lease expires, and every
// event is counted exactly once. The takeover times are logged.
func TestFaultActiveReplicaKilledStandbyTakesOver(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	// Small batches make the drain last long enough to be interrupted.
	e.extraEnv = []string{"IKD_AGGREGATOR_BATCH_SIZE=100"}
	ttl := 2 * time.Second
	d := makeDataset(t, leaseEventCount(), 12)
	ctx := t.Context()
	kills := 1
	if chaos() {
		kills = 3
	}
	f := e.fleet(2)
	chunk := len(d.events) / kills
	var takeovers []string
	for k := range kills {
		base := e.distinctEvents()
		e.publish(ctx, d.events[k*chunk:min((k+1)*chunk, len(d.events))])
		e.rowsBeyond(base + uint64(chunk/4))
		at := e.distinctEvents()
		_, killed := f.replaceHolder((*proc).kill) // a fresh process takes its place, as a standby
		took := f.takenAfter(killed)
		takeovers = append(takeovers, took.Sub(killed).Round(time.Millisecond).String())
		t.Logf("kill %d: SIGKILL of the lease holder with %d events in the warehouse; the standby took over %s later (lease TTL %s)",
			k+1, at, took.Sub(killed).Round(time.Millisecond), ttl)
		if at >= uint64(len(d.events)) {
			t.Errorf("kill %d fell after the drain", k+1)
		}
	}
	e.publish(ctx, d.events[kills*chunk:])
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("lease holder killed", d, faultsf("%d SIGKILLs of the holder; takeovers after %s (TTL %s)", kills, strings.Join(takeovers, ", "), ttl))
}

// c'. The aggregator holding the lease is stopped cleanly (SIGTERM) mid-
// drain: it writes what it took, releases the lease, and the standby takes
// over at once, long before the lease could have expired.
func TestFaultCleanShutdownHandsOverWithoutWaitingForTheTTL(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	ttl := time.Minute
	e.extraEnv = []string{"IKD_AGGREGATOR_BATCH_SIZE=100", "IKD_AGGREGATOR_LEASE_TTL=" + ttl.String()}
	d := makeDataset(t, leaseEventCount(), 13)
	ctx := t.Context()
	f := e.fleet(2)
	e.publish(ctx, d.events)
	e.rowsBeyond(uint64(len(d.events) / 4))
	out, stopped := f.replaceHolder((*proc).stop)
	took := f.takenAfter(stopped)
	handover := took.Sub(stopped)
	if !strings.Contains(out, releasedLease) {
		t.Errorf("the stopped aggregator did not release the lease; output tail:\n%s", tail(out, 2000))
	}
	// Without the release the key would live at least TTL-Renew after the
	// SIGTERM (its last renewal was at most Renew before).
	if tm := lease.For(ttl); handover >= tm.TTL-tm.Renew {
		t.Errorf("the standby took over %s after the SIGTERM: it waited for the lease to expire", handover)
	}
	e.drained(len(d.events), drainTimeout(len(d.events)))
	e.verify("clean handover", d, faultsf("1 SIGTERM of the holder; the standby took over %s later (lease TTL %s)", handover.Round(time.Millisecond), ttl))
}

// eventually waits for cond as long as a lease handover may take here.
func (e *env) eventually(cond func() error) {
	e.t.Helper()
	testenv.Eventually(e.t, 2*time.Minute, cond)
}
