package alerter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// replica is one alerter with its own connections, as a separate process
// would have them, so that it can be killed alone.
type replica struct {
	a    *alerter.Alerter
	nc   *nats.Conn
	kill func()
}

func (e *env) replica(t *testing.T, url, durable string) *replica {
	t.Helper()
	nc := testenv.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := warehouse.Open(e.ctx, testenv.WarehouseDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Durable, cfg.Interval, cfg.StaleDays = durable, 100*time.Millisecond, 0
	a, err := alerter.New(e.ctx, cfg, js, conn, testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	a.Now = func() time.Time { return feb13 }
	ctx, cancel := context.WithCancel(e.ctx)
	done := run(ctx, a)
	r := &replica{a: a, nc: nc}
	// Abrupt: its connections go first, whatever it was doing.
	r.kill = func() {
		nc.Close()
		conn.Close()
		cancel()
		<-done
		a.Close()
	}
	t.Cleanup(func() {
		if !nc.IsClosed() {
			r.kill()
		}
	})
	return r
}

// eventually polls cond until it holds, or fails the test after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, time.Minute, testenv.Holds(what, cond))
}

// settled waits until every live replica has evaluated twice more, so that
// whatever each would record or publish of the current figures is there.
func settled(t *testing.T, rs []*replica) {
	t.Helper()
	for _, r := range rs {
		if r.nc.IsClosed() {
			continue
		}
		from := r.a.Stats.Evaluations.Load()
		eventually(t, "a replica evaluates", func() bool { return r.a.Stats.Evaluations.Load() >= from+2 })
	}
}

// together has every live replica evaluate at the same moment, from the
// same history: the race that the ids, the broker's duplicate window and the
// warehouse's insert tokens must absorb.
func together(t *testing.T, ctx context.Context, rs []*replica) {
	t.Helper()
	start := make(chan struct{})
	errs := make(chan error, len(rs))
	n := 0
	for _, r := range rs {
		if r.nc.IsClosed() {
			continue
		}
		n++
		go func() { <-start; errs <- r.a.Evaluate(ctx, nil) }()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("evaluate: %v", err)
		}
	}
}

// transitions returns ikd.alerts as "rule state alert_id" in the order of at.
func (e *env) transitions(t *testing.T) []string {
	t.Helper()
	rs, err := e.conn.Query(e.ctx, "SELECT rule, state, alert_id FROM ikd.alerts WHERE region_code = '17.71' ORDER BY rule, at")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var rule, state, id string
		if err := rs.Scan(&rule, &state, &id); err != nil {
			t.Fatal(err)
		}
		out = append(out, rule+" "+state+" "+id)
	}
	return out
}

// publishedIDs returns the Nats-Msg-Id of every message on IKD_ALERTS.
func (e *env) publishedIDs(t *testing.T) []string {
	t.Helper()
	var out []string
	_, err := broker.ReadStream(e.ctx, e.js, broker.AlertsStream, jetstream.OrderedConsumerConfig{}, func(msg jetstream.Msg, _ uint64) error {
		var al alerter.Alert
		if err := json.Unmarshal(msg.Data(), &al); err != nil {
			return err
		}
		if msg.Headers().Get(nats.MsgIdHdr) != al.MsgID() {
			return fmt.Errorf("message id %q for alert %s", msg.Headers().Get(nats.MsgIdHdr), al.MsgID())
		}
		out = append(out, al.MsgID())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOnce checks that ikd.alerts holds rows rows for Kota Bengkulu, each
// transition once, and IKD_ALERTS the same transitions once each.
func (e *env) checkOnce(t *testing.T, rows int) []string {
	t.Helper()
	got := e.transitions(t)
	if len(got) != rows {
		t.Fatalf("ikd.alerts holds %d transitions, want %d:\n%s", len(got), rows, strings.Join(got, "\n"))
	}
	pub := e.publishedIDs(t)
	if len(pub) != rows {
		t.Fatalf("IKD_ALERTS holds %d alerts, want %d: %v", len(pub), rows, pub)
	}
	seen := map[string]bool{}
	for _, id := range pub {
		if seen[id] {
			t.Fatalf("%s published twice", id)
		}
		seen[id] = true
	}
	return got
}

// Three alerters, two sharing a durable, watch Kota Bengkulu cross into both
// rules, out of them, and in again; one is killed before the last crossing.
func TestReplicasRecordAndPublishEachTransitionOnceAndSurviveAKill(t *testing.T) {
	e := start(t)
	b := testenv.Broker(t)
	_, e.js = testenv.JetStream(t, b.URL())
	if _, err := alerter.Setup(e.ctx, testConfig(), e.js, e.conn, broker.StreamOptions{}, "", testenv.Quiet); err != nil {
		t.Fatal(err) // readies streams and schema once, as the first program to start would
	}
	rs := []*replica{e.replica(t, b.URL(), "ikd-alerter"), e.replica(t, b.URL(), "ikd-alerter"), e.replica(t, b.URL(), "ikd-alerter-b")}

	// In: nothing activated of 1,000 with 12 % of the year gone.
	e.target(t, "17.71", "absolute", 1000, 0)
	together(t, e.ctx, rs)
	eventually(t, "both rules fire", func() bool { return len(e.transitions(t)) >= 2 })
	settled(t, rs)
	e.checkOnce(t, 2)

	// Out: 20 % activated, past the band of both rules.
	e.activations(t, "17.71", 200)
	together(t, e.ctx, rs)
	eventually(t, "both rules resolve", func() bool { return len(e.transitions(t)) >= 4 })
	settled(t, rs)
	e.checkOnce(t, 4)

	// One replica dies; the others carry on with the next crossing.
	rs[0].kill()
	e.target(t, "17.71", "absolute", 100000, 0)
	together(t, e.ctx, rs)
	eventually(t, "both rules fire again", func() bool { return len(e.transitions(t)) >= 6 })
	settled(t, rs)
	got := e.checkOnce(t, 6)

	// Per rule: fire and resolve of one episode share an id, the next
	// episode has its own.
	for _, rule := range []string{"behind_pace", "projection"} {
		var states, ids []string
		for _, row := range got {
			f := strings.Fields(row)
			if f[0] == rule {
				states, ids = append(states, f[1]), append(ids, f[2])
			}
		}
		if !slices.Equal(states, []string{"firing", "resolved", "firing"}) || ids[0] != ids[1] || ids[2] == ids[0] {
			t.Errorf("%s: states %v ids %v; want firing, resolved, firing, the first two one episode", rule, states, ids)
		}
	}
	fired := uint64(0)
	for _, r := range rs {
		fired += r.a.Stats.Fired.Load() + r.a.Stats.Resolved.Load()
	}
	if fired != 6 {
		t.Errorf("the replicas announced %d transitions as new, want 6", fired)
	}
}

// A replica that died after publishing a transition and before recording it
// leaves it published only: the next alerter records it and does not
// publish it again.
func TestATransitionPublishedByAReplicaThatDiedIsRecordedOnceAndNotRepublished(t *testing.T) {
	e := start(t)
	cfg := testConfig()
	cfg.StaleDays = 0
	a := e.alerter(t, cfg)
	e.target(t, "17.71", "absolute", 1000, 0)
	dead := alerter.Alert{
		AlertID: alerter.EpisodeID(alerter.BehindPace, "17.71", 2023, ""), Rule: alerter.BehindPace, Severity: alerter.Critical,
		State: alerter.Firing, Year: 2023, RegionCode: "17.71", ProvinceCode: "17", CityCode: "17.71",
	}
	data, _ := json.Marshal(dead)
	msg := nats.NewMsg(dead.Subject())
	msg.Data = data
	msg.Header.Set(nats.MsgIdHdr, dead.MsgID())
	if _, err := e.js.PublishMsg(e.ctx, msg); err != nil {
		t.Fatal(err)
	}

	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	got := e.checkOnce(t, 2) // behind_pace and projection, each once
	if !slices.Contains(got, "behind_pace firing "+dead.AlertID) {
		t.Errorf("ikd.alerts lacks the dead replica's transition %s:\n%s", dead.AlertID, strings.Join(got, "\n"))
	}
	if n := a.Stats.Fired.Load(); n != 1 {
		t.Errorf("%d transitions announced as new, want 1 (projection; behind_pace was published already)", n)
	}
}
