package reconcile_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/schema"
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
	conn := testenv.Warehouse(t)
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := warehouse.Migrate(ctx, conn, schema.Migrations, ref, nil); err != nil {
		t.Fatal(err)
	}
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

	rep, err := reconcile.Reconcile(ctx, js, conn)
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

	// A view row that no event supports, its year that of its WIB day, as
	// the materialized view assigns it.
	if err := conn.Exec(ctx, `INSERT INTO ikd.residents_daily WITH toDate(now(), 'Asia/Jakarta') - 1 AS day
		SELECT 'activation', toYear(day), ?, ?, day, uniqExactState('forged'), now64(3)`, city[:2], city); err != nil {
		t.Fatal(err)
	}
	rep, err = reconcile.Reconcile(ctx, js, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Aggregates) != 1 || rep.Aggregates[0].CityCode != city || rep.Aggregates[0].Activated != rep.Aggregates[0].Residents+1 {
		t.Errorf("aggregates: %+v", rep.Aggregates)
	}
	var out bytes.Buffer
	if err := rep.Print(&out); err != nil {
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
	conn := testenv.Warehouse(t)
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := warehouse.Migrate(ctx, conn, schema.Migrations, ref, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(events.WIB)
	tomorrow := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, events.WIB)
	city := ref.Cities()[0].Code
	publishAndStore(t, ctx, js, conn,
		event("today", strings.Repeat("a", 32), city, tomorrow.Add(-time.Millisecond).UTC()),
		event("tomorrow", strings.Repeat("b", 32), city, tomorrow.UTC()))

	rep, err := reconcile.Reconcile(ctx, js, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Checked != 1 {
		var out bytes.Buffer
		rep.Print(&out)
		t.Errorf("%d city-years checked, clean %v; want the one of today, clean:\n%s", rep.Checked, rep.Clean(), out.String())
	}
}
