package clusterfaults_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// eventsPerFault is how many events are published around each fault.
func eventsPerFault() int {
	switch {
	case os.Getenv("IKD_CHAOS") == "1":
		return 100_000 / 6
	case testing.Short():
		return 1_500
	}
	return 5_000
}

// fault is one thing that happens to the cluster while events flow: inject
// does it and returns what brings the cluster whole again, done once the
// pipeline has moved again.
type fault struct {
	name   string
	inject func() (restore func())
}

// row is one line of the suite's table.
type row struct {
	fault          string
	acked, counted int
	recovered      time.Duration
	stream         string
	reconcileClean bool
}

// Three nodes, two aggregators and the alerter; the events stream's leader
// is SIGKILLed, then a follower, then every node is restarted in turn, then
// all three are SIGKILLed at once and started again (with -short only the
// first and the last). After each, every acknowledged event is counted
// exactly once and reconcile is clean; at the end every alert transition was
// recorded and published once.
func TestFaultClusterNodesDieWhileEventsFlow(t *testing.T) {
	ctx := t.Context()
	c := startCluster(t)
	admin := testenv.Connect(t, c.urls())
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	streams := broker.StreamOptions{Replicas: 3}
	testenv.Eventually(t, 2*time.Minute, func() error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := broker.Provision(pctx, js, broker.Streams(streams)...); err != nil {
			return err
		}
		// The aggregators' lease bucket, at the streams' replicas.
		return broker.ProvisionLeases(pctx, js, broker.LeaseBucketConfig(streams))
	})
	for _, s := range broker.Streams(streams) {
		info, err := js.Stream(ctx, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.CachedInfo().Config.Replicas; got != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", s.Name, got)
		}
	}

	dsn := testenv.WarehouseDSN(t)
	conn := testenv.Warehouse(t)
	aggregator := []string{
		"IKD_AGGREGATOR_BATCH_SIZE=200",
		"IKD_AGGREGATOR_FLUSH_INTERVAL=50ms",
		// Messages a node death left unacknowledged come back after AckWait.
		"IKD_AGGREGATOR_ACK_WAIT=3s",
		"IKD_AGGREGATOR_RETRY_MAX_INTERVAL=1s",
	}
	programs := []*program{
		startProgram(t, c, "github.com/ikd-pipeline/ikd/consumers/ikd-aggregator", broker.RoleAggregator, dsn, aggregator...),
		startProgram(t, c, "github.com/ikd-pipeline/ikd/consumers/ikd-aggregator", broker.RoleAggregator, dsn, aggregator...),
		startProgram(t, c, "github.com/ikd-pipeline/ikd/consumers/ikd-alerter", broker.RoleAlerter, dsn,
			"IKD_ALERTER_INTERVAL=500ms", "IKD_ALERTER_STALE_DAYS=0"),
	}

	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	per := eventsPerFault()
	faults := []fault{
		{"SIGKILL the IKD_EVENTS leader", func() func() {
			leader, _ := c.leader(js, broker.EventsStream)
			leader.kill()
			return func() { c.restart(leader) }
		}},
		{"SIGKILL a follower", func() func() {
			_, follower := c.leader(js, broker.EventsStream)
			follower.kill()
			return func() { c.restart(follower) }
		}},
	}
	for _, n := range c.nodes {
		faults = append(faults, fault{"rolling restart: " + n.name, func() func() {
			n.stop()
			c.restart(n)
			return func() {}
		}})
	}
	faults = append(faults, fault{"SIGKILL all three, start them again", func() func() {
		for _, n := range c.nodes {
			go n.kill()
		}
		for _, n := range c.nodes {
			n.kill() // waits until each is gone
		}
		for _, n := range c.nodes {
			c.launch(n)
		}
		for _, n := range c.nodes {
			c.healthy(n)
		}
		return func() {}
	}})
	if testing.Short() {
		// make test's run: the leader's death and the whole cluster's.
		faults = []fault{faults[0], faults[len(faults)-1]}
	}

	evs := makeEvents(t, per*len(faults), ref)
	alerts := watchAlerts(t, conn, js, ref, evs)

	f := newFeed(t, testenv.ConnectAs(t, c.urls(), broker.RoleCounter), conn)
	var rows []row
	for i, flt := range faults {
		part := evs[i*per : (i+1)*per]
		base := f.count()
		published, fallen := make(chan error, 1), make(chan struct{})
		go func() { published <- f.run(ctx, part, fallen) }()
		// The fault falls once a third of this part is acknowledged and the
		// warehouse is taking it in.
		testenv.Eventually(t, 5*time.Minute, func() error {
			if acked := f.count() - base; acked < per/3 {
				return fmt.Errorf("%d of %d events acknowledged", acked, per/3)
			}
			if counted := int(countedEvents(ctx, conn)); counted <= base {
				return fmt.Errorf("warehouse holds %d events, not yet beyond %d", counted, base)
			}
			return nil
		})
		start := time.Now()
		restore := flt.inject()
		close(fallen)
		recovered := movesAgain(t, f, conn, start)
		restore()
		if err := <-published; err != nil {
			t.Fatalf("%s: publishing: %v", flt.name, err)
		}
		for _, p := range programs {
			if out, gone := p.exited(); gone {
				t.Fatalf("%s: %s exited by itself:\n%s", flt.name, p.name, out)
			}
		}
		acked := f.snapshot()
		counted := drained(t, js, conn, acked)
		checkViews(t, conn, acked)
		clean := checkReconcile(t, c, js, conn)
		leader, _ := c.leader(js, broker.EventsStream)
		rows = append(rows, row{fault: flt.name, acked: len(acked), counted: counted, recovered: recovered,
			stream: leader.name, reconcileClean: clean})
		t.Logf("%s: %d acknowledged, %d counted, moving again after %s", flt.name, len(acked), counted, recovered.Round(10*time.Millisecond))
		if t.Failed() {
			break
		}
	}
	if f.lost > 0 {
		t.Logf("%d publishes were given up (not acknowledged, not expected)", f.lost)
	}
	printTable(t, rows)
	if !t.Failed() {
		alerts.check(t, f.snapshot())
	}
}

// movesAgain waits until an event whose publish was acknowledged after the
// fault began is in the warehouse: publishing and draining both work again.
// It returns how long that took.
func movesAgain(t *testing.T, f *feed, conn driver.Conn, since time.Time) time.Duration {
	t.Helper()
	var probe events.Event
	testenv.Eventually(t, 5*time.Minute, func() error {
		if probe.EventID == "" {
			ev, ok := f.ackedAfter(since)
			if !ok {
				return fmt.Errorf("no publish acknowledged since the fault")
			}
			probe = ev
		}
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM ikd.events WHERE event_id = ?", probe.EventID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("event %s, acknowledged since the fault, not counted yet", probe.EventID)
		}
		return nil
	})
	return time.Since(since)
}

// drained waits until the warehouse holds as many events as were
// acknowledged and the aggregators' consumer has nothing pending, then
// returns how many of the acknowledged events the warehouse holds; an event
// missing or one nobody acknowledged fails the test.
func drained(t *testing.T, js jetstream.JetStream, conn driver.Conn, acked []events.Event) int {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, 5*time.Minute, func() error {
		total := countedEvents(ctx, conn)
		cons, err := js.Consumer(ctx, broker.EventsStream, "ikd-aggregator")
		if err != nil {
			return err
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if total == uint64(len(acked)) && ci.NumPending == 0 && ci.NumAckPending == 0 {
			return nil
		}
		return fmt.Errorf("warehouse holds %d events of %d acknowledged; consumer pending %d, ack pending %d",
			total, len(acked), ci.NumPending, ci.NumAckPending)
	})
	rows, err := conn.Query(ctx, "SELECT DISTINCT event_id FROM ikd.events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	held := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		held[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	counted := 0
	for _, ev := range acked {
		if held[ev.EventID] {
			counted++
			delete(held, ev.EventID)
		} else if counted+len(held) < 10 {
			t.Errorf("acknowledged event %s is not in the warehouse", ev.EventID)
		}
	}
	if len(held) > 0 {
		t.Errorf("the warehouse holds %d events whose publish was not acknowledged", len(held))
	}
	return counted
}

// checkViews compares the attainment views with the residents the
// acknowledged events count, city by city and year by year.
func checkViews(t *testing.T, conn driver.Conn, acked []events.Event) {
	t.Helper()
	wantAct, wantEnr := residents(acked)
	rows, err := conn.Query(context.Background(),
		"SELECT toInt64(year), city_code, toUInt64(activated), toUInt64(enrolled) FROM ikd.attainment_city WHERE activated > 0 OR enrolled > 0")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[cityYear]bool{}
	bad := 0
	for rows.Next() {
		var year int64
		var city string
		var act, enr uint64
		if err := rows.Scan(&year, &city, &act, &enr); err != nil {
			t.Fatal(err)
		}
		k := cityYear{city, int(year)}
		seen[k] = true
		if act != uint64(len(wantAct[k])) || enr != uint64(len(wantEnr[k])) {
			if bad++; bad <= 10 {
				t.Errorf("city %s year %d: activated %d enrolled %d, want %d and %d", city, year, act, enr, len(wantAct[k]), len(wantEnr[k]))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[cityYear]map[string]bool{wantAct, wantEnr} {
		for k := range m {
			if !seen[k] {
				t.Errorf("city %s year %d: missing from the views", k.city, k.year)
			}
		}
	}
}

// checkReconcile compares the broker's events with the warehouse's. Its
// read of the stream right after a node came back is the one that once
// ended short, its consumer on a replica still catching up; on a difference
// it shows each node's copy of the stream.
func checkReconcile(t *testing.T, c *cluster, js jetstream.JetStream, conn driver.Conn) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := reconcile.Reconcile(ctx, js, conn, reconcile.Options{Durable: "ikd-aggregator"})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if !rep.Clean() {
		var b bytes.Buffer
		_ = rep.Print(&b, false)
		t.Errorf("reconcile found differences (the nodes' copies of %s: %s):\n%s",
			broker.EventsStream, c.copies(broker.EventsStream), firstLines(b.String(), 20))
	}
	return rep.Clean()
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// printTable prints the suite's table (fault, acknowledged, counted, time
// to recover) to the test log and to stdout, where `go test -v` and make
// chaos show it.
func printTable(t *testing.T, rows []row) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "fault\tacknowledged\tcounted\ttime to recover\tIKD_EVENTS leader after\treconcile")
	for _, r := range rows {
		clean := "clean"
		if !r.reconcileClean {
			clean = "DIFFERENCES"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", r.fault, r.acked, r.counted, r.recovered.Round(10*time.Millisecond), r.stream, clean)
	}
	_ = w.Flush()
	t.Logf("cluster faults (%d events per fault):\n%s", eventsPerFault(), b.String())
}
