package faults_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// Events dead-lettered as future_time (the aggregator's tolerance is 1s) are
// valid a few seconds later: `ikd-aggregator replay` sends them back, and
// they count exactly once; malformed ones are dead-lettered again. Reconcile
// is clean before and after.
func TestFaultDeadLetterReplay(t *testing.T) {
	e := newEnv(t, broker.StreamOptions{})
	e.extraEnv = []string{"IKD_AGGREGATOR_FUTURE_TOLERANCE=1s"}
	d := makeDataset(t, eventCount()/4, 6)
	ctx := t.Context()
	e.fleet(1)

	b := testenv.Builder(t)
	b.FutureTolerance = time.Minute
	ref := b.Ref
	// Far enough ahead that the aggregator still finds them in the future
	// (its tolerance is 1s) when the broker, syncing every write on a busy
	// machine, has taken its time to accept them.
	future := time.Now().Add(20 * time.Second)
	var early []events.Event
	for i, c := range ref.Cities()[:50] {
		ds := ref.DistrictsOf(c.Code)
		if len(ds) == 0 {
			continue
		}
		number := nik.Format(c.ProvinceCode, c.Code, ds[0].Code, time.Date(1980, 3, 1+i%28, 0, 0, 0, 0, time.UTC), false, 9000+i)
		ev, err := b.Build(fmt.Appendf(nil, `{"type":"activation","nik":%q,"office_id":"EARLY","occurred_at":%q}`, number, future.Format(time.RFC3339Nano)))
		if err != nil {
			t.Fatal(err)
		}
		early = append(early, ev)
	}
	e.publish(ctx, early)
	e.publish(ctx, d.events)
	const malformed = 7
	for i := range malformed {
		m := nats.NewMsg("ikd.v1.activation.11.01")
		m.Data = []byte(`{"v":1,"broken`)
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("malformed-%d", i))
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	e.drained(len(d.events), drainTimeout(len(d.events)))
	if got := dlCount(t, e); got != uint64(len(early)+malformed) {
		t.Fatalf("dead letters: %d, want %d", got, len(early)+malformed)
	}
	before := e.checkReconcile()

	time.Sleep(time.Until(future.Add(2 * time.Second)))
	out, err := e.command("replay").CombinedOutput()
	if err != nil {
		t.Fatalf("ikd-aggregator replay: %v\n%s", err, out)
	}
	for _, ev := range early {
		addExpected(d, ev)
	}
	e.drained(len(d.events), drainTimeout(len(d.events)))
	testenv.Eventually(t, time.Minute, func() error {
		if n := dlCount(t, e); n != malformed {
			return fmt.Errorf("%d dead letters, want the %d malformed again", n, malformed)
		}
		return nil
	})
	e.verify("dead-letter replay", d, faultsf("%d future events and %d malformed dead-lettered (reconcile before replay clean=%v), replayed: %s; %d dead letters left",
		len(early), malformed, before.Clean(), trimOut(out), dlCount(t, e)))
}

func trimOut(b []byte) string {
	s := string(b)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

func addExpected(d *dataset, ev events.Event) {
	d.events = append(d.events, ev)
	d.ids[ev.EventID] = true
	k := cityYear{ev.CityCode, ev.OccurredAt.In(events.WIB).Year()}
	set := d.activated
	if ev.Type == events.TypeEnrolment {
		set = d.enrolled
	}
	if set[k] == nil {
		set[k] = map[string]bool{}
	}
	set[k][ev.Resident] = true
}

func dlCount(t *testing.T, e *env) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), broker.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(binary(e.t), args...)
	cmd.Env = e.processEnv(broker.RoleAdmin)
	return cmd
}
