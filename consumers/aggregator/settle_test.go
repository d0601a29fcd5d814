package aggregator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// slowWriter is the real warehouse writer slowed past the broker's AckWait,
// as a loaded warehouse is.
type slowWriter struct {
	aggregator.Writer
	delay time.Duration
}

func (w slowWriter) Write(ctx context.Context, records []aggregator.Record) error {
	select {
	case <-time.After(w.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.Writer.Write(ctx, records)
}

// Every write of a refused batch, and its halves, takes longer than the
// broker waits for an acknowledgement: the messages not yet settled must be
// reported in progress, each must be settled exactly once, and none may come
// back to be written again.
func TestASlowWarehouseSplittingARefusedBatchGetsNoMessageDeliveredTwice(t *testing.T) {
	cfg := testConfig()
	cfg.AckWait = time.Second
	cfg.BatchSize = 8 // the whole file in one batch, closed on its count
	cfg.FlushInterval = 100 * time.Millisecond
	p := prepare(t)
	p.exec(t, "ALTER TABLE ikd.events ADD CONSTRAINT no_poison CHECK office_id != 'POISON-OFFICE'")
	t.Cleanup(func() { p.exec(t, "ALTER TABLE ikd.events DROP CONSTRAINT no_poison") })
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	for i := 1; i <= cfg.BatchSize; i++ {
		office := "1771-OFF-01"
		if i == 2 {
			office = "POISON-OFFICE"
		}
		p.publish(t, line("activation", p.residentOf(t, "17.71", i), office, now))
	}
	ref, err := region.Load()
	if err != nil {
		t.Fatal(err)
	}
	validator := &events.Validator{Ref: ref, Now: time.Now, FutureTolerance: cfg.FutureTolerance}
	writer := slowWriter{Writer: chwriter.Writer{W: warehouse.NewEventWriter(p.conn)}, delay: cfg.AckWait + cfg.AckWait/5}
	p.agg, err = aggregator.New(context.Background(), cfg, p.aggJS, writer, validator, testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	p.run(t)
	p.deadLetter(t, "write_failed")
	p.settle(t)
	good := uint64(cfg.BatchSize - 1)
	testenv.Eventually(t, time.Minute, func() error {
		if w, r := p.agg.Stats.Written.Load(), p.agg.Stats.Rewritten.Load(); w+r < good {
			return fmt.Errorf("%d written, %d written again; want %d", w, r, good)
		}
		return nil
	})
	if w, r := p.agg.Stats.Written.Load(), p.agg.Stats.Rewritten.Load(); w != good || r != 0 {
		t.Fatalf("%d events written, %d of them delivered again and rewritten; want %d written once each", w+r, r, good)
	}
	if got := p.city(t, "17.71", time.Now().In(events.WIB).Year()); got.Activated != good {
		t.Fatalf("activated %d, want %d", got.Activated, good)
	}
	// Each message once, and the refused one again after each refusal but
	// the last, which dead-letters it: nothing was left for AckWait to resend.
	consumer, err := p.js.Consumer(context.Background(), contract.EventsStream, cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := consumer.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(cfg.BatchSize + cfg.MaxDeliver - 1); ci.Delivered.Consumer != want {
		t.Fatalf("the broker made %d deliveries, want %d", ci.Delivered.Consumer, want)
	}
}

// An aggregator stopped while the warehouse is down sends its batch back to
// the broker: acknowledging it would lose events that were never written.
func TestStoppingDuringAWarehouseOutageSendsTheBatchBack(t *testing.T) {
	p := prepare(t)
	endOutage := p.outage(t)
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	for i := 1; i <= 20; i++ {
		p.publish(t, line("activation", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.agg.Run(ctx) }()
	p.retrying(t, 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("aggregator stopped with %v", err)
	}
	endOutage()
	// The next aggregator on the durable takes what the stopped one gave back.
	p.agg = p.setup(t, testConfig())
	p.run(t)
	p.settle(t)
	if got := p.city(t, "17.71", time.Now().In(events.WIB).Year()); got.Activated != 20 {
		t.Fatalf("activated %d, want 20: events acknowledged during the outage were never written", got.Activated)
	}
}

// A province counts the residents of all its cities: the sum of its cities,
// not the largest of them.
func TestAProvinceCountsTheResidentsOfAllItsCities(t *testing.T) {
	p := start(t)
	year := time.Now().In(events.WIB).Year()
	other := ""
	for _, c := range p.ref.Cities() {
		if c.ProvinceCode == "17" && c.Code != "17.71" && len(p.ref.DistrictsOf(c.Code)) > 0 {
			other = c.Code
			break
		}
	}
	if other == "" {
		t.Fatal("no second city with districts in province 17")
	}
	now := time.Now().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	for i := 1; i <= 2; i++ {
		lines = append(lines, line("activation", p.residentOf(t, "17.71", i), "1771-OFF-01", now))
	}
	for i := 1; i <= 3; i++ {
		lines = append(lines, line("activation", p.residentOf(t, other, i), "1771-OFF-01", now))
		lines = append(lines, line("enrolment", p.residentOf(t, other, 10+i), "1771-OFF-01", now))
	}
	p.publish(t, lines...)
	p.settle(t)
	var activated, enrolled, citiesTarget uint64
	err := p.conn.QueryRow(context.Background(), `SELECT activated, enrolled, cities_target FROM ikd.attainment_province
		WHERE year = ? AND province_code = '17'`, year).Scan(&activated, &enrolled, &citiesTarget)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.city(t, "17.71", year), p.city(t, other, year)
	if activated != 5 || enrolled != 3 || citiesTarget != a.Target+b.Target {
		t.Fatalf("province 17: activated %d enrolled %d cities_target %d; want 5, 3 and %d+%d", activated, enrolled, citiesTarget, a.Target, b.Target)
	}
}
