package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func event(id, resident, city string, at time.Time) events.Event {
	return events.Event{V: 1, EventID: id, Type: events.TypeActivation, Resident: resident,
		ProvinceCode: city[:2], CityCode: city, DistrictCode: city + ".01", OfficeID: "X", Channel: events.ChannelCounter, OccurredAt: at}
}

// The broker holds a, b, c (c dead-lettered) and d; the warehouse holds a, b
// and e: d is missing, e unexpected; a forged view row makes an aggregate
// mismatch.
func TestReconcileFindsMissingUnexpectedAndAggregateDifferences(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := testenv.JetStream(t, testenv.Broker(t).URL())
	conn, ref := testenv.MigratedWarehouse(t)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	city := ref.Cities()[0].Code
	evs := map[string]events.Event{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		evs[id] = event("id-"+id, strings.Repeat(id, 32), city, at)
	}
	seqs := map[string]uint64{}
	for _, id := range []string{"a", "b", "c", "d"} {
		data, _ := evs[id].Marshal()
		ack, err := js.Publish(ctx, evs[id].Subject(), data, jetstream.WithMsgID(evs[id].EventID))
		if err != nil {
			t.Fatal(err)
		}
		seqs[id] = ack.Sequence
	}
	dl := nats.NewMsg(contract.DeadLetterSubject("future_time"))
	dl.Header.Set(contract.HeaderOriginalSubject, evs["c"].Subject())
	dl.Header.Set(contract.HeaderOriginalSeq, strconv.FormatUint(seqs["c"], 10))
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		t.Fatal(err)
	}
	var recs []warehouse.Record
	for _, id := range []string{"a", "b", "e"} {
		recs = append(recs, warehouse.Record{Event: evs[id], Seq: seqs[id]})
	}
	if err := warehouse.NewEventWriter(conn).Write(ctx, recs); err != nil {
		t.Fatal(err)
	}

	rep, err := reconcile.Reconcile(ctx, js, conn, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Subjects) != 1 {
		t.Fatalf("subjects: %+v", rep.Subjects)
	}
	s := rep.Subjects[0]
	if s.Broker != 3 || s.Warehouse != 3 || s.Missing != 1 || s.Unexpected != 1 ||
		strings.Join(s.MissingIDs, ",") != "id-d" || strings.Join(s.ExtraIDs, ",") != "id-e" {
		t.Errorf("subject row: %+v", s)
	}
	if len(rep.Aggregates) != 0 || rep.Clean() {
		t.Errorf("aggregates %+v clean %v", rep.Aggregates, rep.Clean())
	}

	// A resident counted that no event supports, its year that of its WIB
	// day, as the writer assigns it.
	if err := conn.Exec(ctx, `INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign)
		WITH toDate(now(), 'Asia/Jakarta') - 1 AS day
		SELECT 'activation', toYear(day), MD5('forged'), ?, ?, day, 1`, city[:2], city); err != nil {
		t.Fatal(err)
	}
	rep, err = reconcile.Reconcile(ctx, js, conn, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Aggregates) != 1 || rep.Aggregates[0].CityCode != city || rep.Aggregates[0].Activated != rep.Aggregates[0].Residents+1 {
		t.Errorf("aggregates: %+v", rep.Aggregates)
	}
	var out bytes.Buffer
	if err := rep.Print(&out, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{evs["a"].Subject(), "1 missing", "id-d", "id-e", "views say"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("report:\n%s", out.String())
}

// publishAndStore puts evs on the broker and in ikd.events, as the aggregator
// would.
func publishAndStore(t *testing.T, ctx context.Context, js jetstream.JetStream, conn driver.Conn, evs ...events.Event) {
	t.Helper()
	var recs []warehouse.Record
	for _, ev := range evs {
		data, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, ev.Subject(), data, jetstream.WithMsgID(ev.EventID))
		if err != nil {
			t.Fatalf("publish %s: %v", ev.EventID, err)
		}
		recs = append(recs, warehouse.Record{Event: ev, Seq: ack.Sequence})
	}
	if err := warehouse.NewEventWriter(conn).Write(ctx, recs); err != nil {
		t.Fatalf("write events: %v", err)
	}
}

// The aggregator accepts events up to its future tolerance ahead of now,
// which just before midnight WIB is tomorrow's date; the views count up to
// the end of today in WIB, and so must the events they are compared with.
func TestAggregatesCompareOnlyEventsUpToTheEndOfTodayInWIB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := testenv.JetStream(t, testenv.Broker(t).URL())
	conn, ref := testenv.MigratedWarehouse(t)
	now := time.Now().In(events.WIB)
	tomorrow := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, events.WIB)
	city := ref.Cities()[0].Code
	publishAndStore(t, ctx, js, conn,
		event("today", strings.Repeat("a", 32), city, tomorrow.Add(-time.Millisecond).UTC()),
		event("tomorrow", strings.Repeat("b", 32), city, tomorrow.UTC()))

	rep, err := reconcile.Reconcile(ctx, js, conn, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Checked != 1 {
		var out bytes.Buffer
		rep.Print(&out, true)
		t.Errorf("%d city-years checked, clean %v; want the one of today, clean:\n%s", rep.Checked, rep.Clean(), out.String())
	}
}

// startAggregator runs a real aggregator on js and conn until the test ends.
func startAggregator(t *testing.T, js jetstream.JetStream, conn driver.Conn) aggregator.Config {
	t.Helper()
	cfg := aggregator.Config{
		Durable: "ikd-aggregator", BatchSize: 200, FlushInterval: 20 * time.Millisecond, AckWait: 30 * time.Second,
		MaxDeliver: 3, RefusedDelay: 10 * time.Millisecond, RetryMaxInterval: 200 * time.Millisecond, FutureTolerance: 10 * time.Minute,
		LeaseTTL: 10 * time.Second,
	}
	agg, err := chwriter.Setup(context.Background(), cfg, js, conn, broker.StreamOptions{}, "", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = agg.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cfg
}

// publishSteadily publishes activations over a few cities, and now and then
// a message the aggregator dead-letters, until stop is called; it returns
// how many it published.
func publishSteadily(t *testing.T, js jetstream.JetStream, cities []string) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for ; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			city := cities[n%len(cities)]
			if n%50 == 49 {
				if _, err := js.Publish(ctx, events.SubjectPrefix+".activation."+strings.ReplaceAll(city, ".", "."), []byte("{not json")); err != nil && ctx.Err() == nil {
					t.Errorf("publish: %v", err)
					return
				}
				continue
			}
			ev := event(fmt.Sprintf("live-%d", n), fmt.Sprintf("%032x", n%400), city, time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond))
			data, _ := ev.Marshal()
			if _, err := js.Publish(ctx, ev.Subject(), data, jetstream.WithMsgID(ev.EventID)); err != nil && ctx.Err() == nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	var n int
	return func() int { once.Do(func() { cancel(); n = <-done }); return n }
}

// ackFloor is the aggregator consumer's ack floor on IKD_EVENTS.
func ackFloor(t *testing.T, ctx context.Context, js jetstream.JetStream, durable string) uint64 {
	t.Helper()
	cons, err := js.Consumer(ctx, broker.EventsStream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// waitAckFloor waits until the aggregator has settled past seq.
func waitAckFloor(t *testing.T, ctx context.Context, js jetstream.JetStream, durable string, seq uint64) uint64 {
	t.Helper()
	for {
		if f := ackFloor(t, ctx, js, durable); f > seq {
			return f
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the aggregator did not settle past sequence %d", seq)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestReconcileIsCleanEveryTimeWhileEventsFlowAndTheAggregatorDrains(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, js := testenv.JetStream(t, testenv.Broker(t).URL())
	conn := testenv.Warehouse(t)
	cfg := startAggregator(t, js, conn)
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	cities := []string{ref.Cities()[0].Code, ref.Cities()[1].Code, ref.Cities()[100].Code}
	stop := publishSteadily(t, js, cities)
	defer stop()

	var last uint64
	for run := 1; run <= 6; run++ {
		waitAckFloor(t, ctx, js, cfg.Durable, last)
		rep, err := reconcile.Reconcile(ctx, js, conn, reconcile.Options{Durable: cfg.Durable})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_ = rep.Print(&out, false)
		if !rep.Clean() || rep.Cut <= last || rep.Messages == 0 {
			t.Fatalf("run %d: clean %v, cut %d after %d:\n%s", run, rep.Clean(), rep.Cut, last, out.String())
		}
		if lines := strings.Count(out.String(), "\n"); lines > 5 {
			t.Errorf("run %d: a clean report of %d lines; want the summary only:\n%s", run, lines, out.String())
		}
		t.Logf("run %d: cut %d, %d messages, %d dead-lettered, %d city-years checked, %d unsettled", run, rep.Cut, rep.Messages, rep.DeadLettered, rep.Checked, rep.Unsettled)
		last = rep.Cut
	}
	published := stop()
	// Drained: nothing is written after the break below.
	waitAckFloor(t, ctx, js, cfg.Durable, testenv.StreamInfo(t, js, broker.EventsStream).State.LastSeq-1)

	// Broken on purpose: the year's written events dropped (a whole
	// partition: row deletes are mutations, which the embedded engine runs
	// in the background at its own pace), an event the broker never had
	// added below the cut.
	year := time.Now().In(events.WIB).Year()
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE ikd.events DROP PARTITION %d", year)); err != nil {
		t.Fatal(err)
	}
	forged := event("forged-1", strings.Repeat("f", 32), cities[0], time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond))
	if err := warehouse.NewEventWriter(conn).Write(ctx, []warehouse.Record{{Event: forged, Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	rep, err := reconcile.Reconcile(ctx, js, conn, reconcile.Options{Durable: cfg.Durable})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_ = rep.Print(&out, false)
	expected, missing, unexpected := 0, 0, 0
	for _, s := range rep.Subjects {
		expected, missing, unexpected = expected+s.Broker, missing+s.Missing, unexpected+s.Unexpected
	}
	if rep.Clean() || expected == 0 || missing != expected || unexpected != 1 || len(rep.Aggregates) == 0 || !strings.Contains(out.String(), "forged-1") {
		t.Errorf("after %d published, the year's rows dropped and one forged: clean %v, %d missing of %d, %d unexpected, %d aggregates\n%s",
			published, rep.Clean(), missing, expected, unexpected, len(rep.Aggregates), out.String())
	}
	t.Logf("broken report:\n%s", out.String())
}
