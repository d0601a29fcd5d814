package aggregator_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// pipeline is a fresh broker and an emptied warehouse with an aggregator
// running between them.
type pipeline struct {
	js      jetstream.JetStream // the admin's, for the test's own looks
	aggJS   jetstream.JetStream // the aggregator role's
	conn    driver.Conn
	agg     *aggregator.Aggregator
	builder *events.Builder
	ref     *region.Reference
}

func testConfig() aggregator.Config {
	return aggregator.Config{
		Durable: "ikd-aggregator", BatchSize: 500, FlushInterval: 50 * time.Millisecond, AckWait: 5 * time.Second,
		MaxDeliver: 3, RefusedDelay: 10 * time.Millisecond, RetryMaxInterval: 200 * time.Millisecond, FutureTolerance: 10 * time.Minute,
		LeaseTTL: 10 * time.Second, LedgerFilterMiB: 1,
	}
}

func start(t *testing.T) *pipeline {
	t.Helper()
	p := prepare(t)
	p.run(t)
	return p
}

// prepare readies both ends and the aggregator's durable consumer, without
// consuming yet.
func prepare(t *testing.T) *pipeline {
	t.Helper()
	return prepareAt(t, testenv.StoreDir(t))
}

// prepareAt is prepare with the broker's store in dir. The test looks and
// publishes as the admin; the aggregator has only its own role's
// permissions, as in production.
func prepareAt(t *testing.T, dir string) *pipeline {
	t.Helper()
	b := testenv.BrokerAt(t, dir, -1)
	_, js := testenv.JetStream(t, b.URL())
	aggJS, err := jetstream.New(testenv.ConnectAs(t, b.URL(), broker.RoleAggregator))
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.Warehouse(t)
	p := &pipeline{js: js, aggJS: aggJS, conn: conn}
	p.agg = p.setup(t, testConfig())
	p.builder = testenv.Builder(t)
	p.ref = p.builder.Ref
	return p
}

// setup readies both ends as a program does at start and returns a new
// aggregator on the durable consumer, not yet running.
func (p *pipeline) setup(t *testing.T, cfg aggregator.Config) *aggregator.Aggregator {
	t.Helper()
	agg, err := chwriter.Setup(context.Background(), cfg, p.aggJS, p.conn, broker.StreamOptions{}, "", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	return agg
}

// run starts consuming until the test ends.
func (p *pipeline) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.agg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("aggregator: %v", err)
		}
	})
}

// residentOf returns a valid NIK of someone living in city.
func (p *pipeline) residentOf(t *testing.T, city string, serial int) string {
	t.Helper()
	districts := p.ref.DistrictsOf(city)
	if len(districts) == 0 {
		t.Fatalf("no districts in %s", city)
	}
	c, _ := p.ref.City(city)
	return nik.Format(c.ProvinceCode, city, districts[0].Code, time.Date(1990, 1, 1+serial%28, 0, 0, 0, 0, time.UTC), serial%2 == 0, serial)
}

func line(typ, nikNumber, office, at string) string {
	return fmt.Sprintf(`{"type":%q,"nik":%q,"office_id":%q,"occurred_at":%q,"channel":"counter"}`, typ, nikNumber, office, at)
}

// publish builds and publishes counter lines as ikd-counter does.
func (p *pipeline) publish(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		ev, err := p.builder.Build([]byte(l))
		if err != nil {
			t.Fatalf("build %s: %v", l, err)
		}
		p.publishEvent(t, ev)
	}
}

func (p *pipeline) publishEvent(t *testing.T, ev events.Event) {
	t.Helper()
	data, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = data
	msg.Header.Set(nats.MsgIdHdr, ev.EventID)
	if _, err := p.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func (p *pipeline) publishRaw(t *testing.T, subject string, data []byte) {
	t.Helper()
	if _, err := p.js.Publish(context.Background(), subject, data); err != nil {
		t.Fatal(err)
	}
}

// settle waits until the broker records every message published so far as
// settled by the aggregator, acknowledged or terminated: the aggregator writes
// a batch, or stores a dead letter, before it settles the messages.
func (p *pipeline) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	last := testenv.StreamInfo(t, p.js, contract.EventsStream).State.LastSeq
	consumer, err := p.js.Consumer(ctx, contract.EventsStream, testConfig().Durable)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		ci, err := consumer.Info(ctx)
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < last {
			return fmt.Errorf("the aggregator settled the stream up to %d of %d", ci.AckFloor.Stream, last)
		}
		return nil
	})
}

type cityRow struct {
	Activated, Enrolled, Target uint64
	AttainmentPct, ExpectedPct  float64
	BehindPace                  bool
}

func (p *pipeline) city(t *testing.T, code string, year int) cityRow {
	t.Helper()
	var r cityRow
	err := p.conn.QueryRow(context.Background(), `SELECT activated, enrolled, target, attainment_pct, expected_pct, behind_pace
		FROM ikd.attainment_city WHERE city_code = ? AND year = ?`, code, year).
		Scan(&r.Activated, &r.Enrolled, &r.Target, &r.AttainmentPct, &r.ExpectedPct, &r.BehindPace)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (p *pipeline) count(t *testing.T, sql string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := p.conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (p *pipeline) exec(t *testing.T, sql string) {
	t.Helper()
	if err := p.conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// outage takes ikd.events away, as in a warehouse outage, and returns what
// ends it; the table comes back when the test ends in any case.
func (p *pipeline) outage(t *testing.T) (end func()) {
	t.Helper()
	p.exec(t, "DETACH TABLE ikd.events")
	var once sync.Once
	end = func() { once.Do(func() { p.exec(t, "ATTACH TABLE ikd.events") }) }
	t.Cleanup(end)
	return end
}

func TestViewsListEveryRegionOfTheReferenceData(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	if n := p.count(t, "SELECT count() FROM ikd.attainment_city WHERE year = ?", year); n != 514 {
		t.Errorf("cities: got %d want 514", n)
	}
	if n := p.count(t, "SELECT count() FROM ikd.attainment_province WHERE year = ?", year); n != 38 {
		t.Errorf("provinces: got %d want 38", n)
	}
}

func TestPublishedEventsShowExactNumbersAndRepublishingChangesNothing(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	for i := 1; i <= 8; i++ {
		lines = append(lines, line("enrolment", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	for i := 1; i <= 3; i++ {
		lines = append(lines, line("activation", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	p.publish(t, lines...)
	p.settle(t)
	got := p.city(t, "17.71", year)
	// Default target: 25 % of (baseline 0 + 8 enrolled) = 2.
	if got.Activated != 3 || got.Enrolled != 8 || got.Target != 2 || got.AttainmentPct != 150 {
		t.Fatalf("Kota Bengkulu: %+v", got)
	}
	// The same file again, without the message ids by which the broker
	// would drop it as a duplicate: the aggregator receives and writes every
	// event a second time, and the warehouse must absorb them.
	for _, l := range lines {
		ev, err := p.builder.Build([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		p.publishRaw(t, ev.Subject(), mustMarshal(t, ev))
	}
	stream, err := p.js.Stream(context.Background(), contract.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2*uint64(len(lines)) {
		t.Fatalf("the stream holds %d messages, want every event twice (%d)", info.State.Msgs, 2*len(lines))
	}
	p.settle(t)
	testenv.Eventually(t, time.Minute, func() error {
		if w := p.agg.Stats.Written.Load() + p.agg.Stats.Rewritten.Load(); w < 2*uint64(len(lines)) {
			return fmt.Errorf("the aggregator wrote %d events, want each of the %d twice", w, len(lines))
		}
		return nil
	})
	if again := p.city(t, "17.71", year); again != got {
		t.Fatalf("republishing changed the view: %+v then %+v", got, again)
	}
	if n := p.count(t, "SELECT count() FROM ikd.events FINAL"); n != uint64(len(lines)) {
		t.Fatalf("raw events: got %d want %d", n, len(lines))
	}
}

func TestReactivationAndActivationAwayFromHomeCountOnceAtHome(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	resident := p.residentOf(t, "17.71", 42)
	t1 := time.Now().Add(-3 * time.Hour).Format(time.RFC3339)
	t2 := time.Now().Add(-2 * time.Hour).Format(time.RFC3339)
	t3 := time.Now().Add(-1 * time.Hour).Format(time.RFC3339)
	p.publish(t,
		line("activation", resident, "1771-OFF-01", t1), // at home
		line("activation", resident, "1771-OFF-01", t2), // again, at home
		line("activation", resident, "3171-DKI-01", t3), // again, in Jakarta
	)
	p.settle(t)
	if got := p.city(t, "17.71", year); got.Activated != 1 {
		t.Fatalf("Kota Bengkulu activated: got %d want 1", got.Activated)
	}
	if n := p.count(t, "SELECT sum(activated) FROM ikd.attainment_city WHERE year = ? AND city_code != '17.71'", year); n != 0 {
		t.Fatalf("activations counted away from home: %d", n)
	}
	if n := p.count(t, "SELECT activated FROM ikd.attainment_province WHERE year = ? AND province_code = '17'", year); n != 1 {
		t.Fatalf("Bengkulu province activated: got %d want 1", n)
	}
}

func TestTargetsInsertedByAdminsDriveAttainment(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	p.exec(t, fmt.Sprintf(`INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline) VALUES
		(%d, '17.71', 'absolute', 4, 0), (%d, '18.71', 'percent_of_recorded', 25, 8), (%d, '17', 'absolute', 100, 0)`, year, year, year))
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	p.publish(t,
		line("activation", p.residentOf(t, "17.71", 1), "1771-OFF-01", now),
		line("enrolment", p.residentOf(t, "18.71", 1), "1871-OFF-01", now),
		line("enrolment", p.residentOf(t, "18.71", 2), "1871-OFF-01", now),
		line("activation", p.residentOf(t, "18.71", 1), "1871-OFF-01", now),
	)
	p.settle(t)
	if got := p.city(t, "17.71", year); got.Target != 4 || got.AttainmentPct != 25 {
		t.Errorf("absolute target: %+v", got)
	}
	// 25 % of (8 recorded before the year + 2 enrolled in it) = 2.5, rounded up to 3.
	if got := p.city(t, "18.71", year); got.Target != 3 || got.AttainmentPct != 33.33 {
		t.Errorf("percent target: %+v", got)
	}
	var target, citiesTarget uint64
	if err := p.conn.QueryRow(context.Background(), "SELECT target, cities_target FROM ikd.attainment_province WHERE year = ? AND province_code = '17'", year).Scan(&target, &citiesTarget); err != nil {
		t.Fatal(err)
	}
	if target != 100 || citiesTarget != 4 {
		t.Errorf("province 17: target %d, cities_target %d", target, citiesTarget)
	}
}

func TestInvalidMessagesAreDeadLetteredWithTheirReasonAndTheRestCounts(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	now := time.Now().Add(-time.Minute)
	good, err := p.builder.Build([]byte(line("activation", p.residentOf(t, "17.71", 1), "1771-OFF-01", now.Format(time.RFC3339))))
	if err != nil {
		t.Fatal(err)
	}
	unknownRegion := good
	unknownRegion.EventID, unknownRegion.ProvinceCode, unknownRegion.CityCode, unknownRegion.DistrictCode = "bad-region", "99", "99.01", "99.01.01"
	future := good
	future.EventID, future.OccurredAt = "future", time.Now().Add(48*time.Hour)
	cases := map[string][]byte{
		"malformed_json":  []byte(`{"v":1,`),
		"unknown_version": []byte(strings.Replace(string(mustMarshal(t, good)), `"v":1`, `"v":2`, 1)),
		"unknown_type":    []byte(strings.Replace(string(mustMarshal(t, good)), `"activation"`, `"renewal"`, 1)),
		"unknown_region":  mustMarshal(t, unknownRegion),
		"future_time":     mustMarshal(t, future),
		"oversized":       []byte(`{"v":1,"pad":"` + strings.Repeat("x", events.MaxMessageBytes) + `"}`),
	}
	for _, data := range cases {
		p.publishRaw(t, "ikd.v1.activation.17.71", data)
	}
	p.publishEvent(t, good)
	p.settle(t)
	if got := p.city(t, "17.71", year); got.Activated != 1 {
		t.Fatalf("the valid event behind the poison ones: activated %d", got.Activated)
	}
	stream, err := p.js.Stream(context.Background(), contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	for reason, data := range cases {
		msg, err := stream.GetLastMsgForSubject(context.Background(), contract.DeadLetterSubject(reason))
		if err != nil {
			t.Errorf("%s: no dead letter: %v", reason, err)
			continue
		}
		if string(msg.Data) != string(data) || msg.Header.Get(contract.HeaderReason) != reason || msg.Header.Get(contract.HeaderDetail) == "" {
			t.Errorf("%s: dead letter lacks the original payload or its reason: %v", reason, msg.Header)
		}
	}
}

func mustMarshal(t *testing.T, ev events.Event) []byte {
	t.Helper()
	data, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestAnEventTheWarehouseRefusesIsIsolatedRetriedAndDeadLettered(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	// A constraint makes the real engine refuse one office's events for good.
	p.exec(t, "ALTER TABLE ikd.events ADD CONSTRAINT no_poison CHECK office_id != 'POISON-OFFICE'")
	t.Cleanup(func() { p.exec(t, "ALTER TABLE ikd.events DROP CONSTRAINT no_poison") })
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	for i := 1; i <= 40; i++ {
		office := "1771-OFF-01"
		if i == 17 {
			office = "POISON-OFFICE"
		}
		lines = append(lines, line("activation", p.residentOf(t, "17.71", i), office, now))
	}
	p.publish(t, lines...)
	msg := p.deadLetter(t, "write_failed")
	p.settle(t)
	if got := p.city(t, "17.71", year); got.Activated != 39 {
		t.Fatalf("the 39 events around the refused one: activated %d", got.Activated)
	}
	if !strings.Contains(msg.Header.Get(contract.HeaderDetail), "no_poison") {
		t.Errorf("dead letter should carry the warehouse's reason: %q", msg.Header.Get(contract.HeaderDetail))
	}
}

func TestARefusedEventHasMaxDeliverTriesHoweverOftenTheBrokerDeliveredIt(t *testing.T) {
	p := prepare(t)
	p.exec(t, "ALTER TABLE ikd.events ADD CONSTRAINT no_poison CHECK office_id != 'POISON-OFFICE'")
	t.Cleanup(func() { p.exec(t, "ALTER TABLE ikd.events DROP CONSTRAINT no_poison") })
	p.publish(t, line("activation", p.residentOf(t, "17.71", 1), "POISON-OFFICE", time.Now().Add(-time.Minute).Format(time.RFC3339)))
	// Deliveries that never reached the warehouse, as behind a long outage.
	consumer, err := p.js.Consumer(context.Background(), contract.EventsStream, testConfig().Durable)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 * testConfig().MaxDeliver {
		batch, err := consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			_ = msg.Nak()
		}
	}
	p.run(t)
	p.settle(t)
	if got, want := p.agg.Stats.Refused.Load(), uint64(testConfig().MaxDeliver-1); got != want {
		t.Fatalf("the event was sent back %d times before its dead letter, want %d", got, want)
	}
}

func TestAMissingTableHoldsEventsUntilItIsBackAndDeadLettersNone(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	endOutage := p.outage(t)
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	for i := 1; i <= 20; i++ {
		lines = append(lines, line("activation", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	p.publish(t, lines...)
	p.retrying(t, 5)
	if w, d := p.agg.Stats.Written.Load(), p.agg.Stats.DeadLettered.Load(); w != 0 || d != 0 {
		t.Fatalf("while the table is missing: %d written, %d dead-lettered", w, d)
	}
	endOutage()
	p.settle(t)
	if d := p.agg.Stats.DeadLettered.Load(); d != 0 {
		t.Fatalf("%d events dead-lettered for the warehouse's own trouble", d)
	}
	if got := p.city(t, "17.71", year); got.Activated != 20 {
		t.Fatalf("activated %d, want 20", got.Activated)
	}
}

// retrying waits until the aggregator has retried a write n times.
func (p *pipeline) retrying(t *testing.T, n uint64) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func() error {
		if r := p.agg.Stats.Retries.Load(); r < n {
			return fmt.Errorf("%d write retries, want %d; %d dead letters", r, n, p.agg.Stats.DeadLettered.Load())
		}
		return nil
	})
}

// deadLetter waits for the last dead letter of reason and returns it.
func (p *pipeline) deadLetter(t *testing.T, reason string) *jetstream.RawStreamMsg {
	t.Helper()
	stream, err := p.js.Stream(context.Background(), contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	var msg *jetstream.RawStreamMsg
	testenv.Eventually(t, 2*time.Minute, func() error {
		msg, err = stream.GetLastMsgForSubject(context.Background(), contract.DeadLetterSubject(reason))
		if err != nil {
			return fmt.Errorf("no dead letter %s: %w", reason, err)
		}
		return nil
	})
	return msg
}
