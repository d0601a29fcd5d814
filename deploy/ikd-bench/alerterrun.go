package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
)

// alerterRun is the project's alerter, in this process with its default
// configuration, its clock moved into nationalYear so that the year it
// evaluates is the one the national set fills; every evaluation it makes is
// kept.
type alerterRun struct {
	a      *alerter.Alerter
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	evals   []alerter.Evaluation
	first   chan struct{} // closed when the evaluation at start is done
	firstAt time.Time     // when the evaluation at start ended
}

func startAlerter(ctx context.Context, window time.Duration, natsURL string, auth broker.Auth, conn driver.Conn, logger *slog.Logger) (*alerterRun, error) {
	a, nc, err := newAlerter(ctx, "ikd-bench-alerter", window, natsURL, auth, conn, logger)
	if err != nil {
		return nil, err
	}
	a.Now = inNationalYear
	r := &alerterRun{a: a, nc: nc, done: make(chan error, 1), first: make(chan struct{})}
	a.Evaluated = r.evaluated
	ctx, r.cancel = context.WithCancel(ctx)
	go func() { r.done <- a.Run(ctx) }()
	return r, nil
}

func (r *alerterRun) evaluated(ev alerter.Evaluation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.evals) == 0 {
		r.firstAt = time.Now()
		close(r.first)
	}
	r.evals = append(r.evals, ev)
}

// started waits for the evaluation of every region the alerter makes at
// start (it publishes the year's first alerts, which no later one repeats).
func (r *alerterRun) started(ctx context.Context, timeout time.Duration) error {
	select {
	case <-r.first:
		return nil
	case err := <-r.done:
		return fmt.Errorf("alerter stopped before its first evaluation: %v", err)
	case <-time.After(timeout):
		return fmt.Errorf("alerter: no evaluation within %s of its start", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop ends the alerter and returns its evaluations, the one at start first,
// and how long it ran after that one.
func (r *alerterRun) stop() ([]alerter.Evaluation, time.Duration, error) {
	r.cancel()
	err := <-r.done
	r.a.Close()
	r.nc.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	var ran time.Duration
	if !r.firstAt.IsZero() {
		ran = time.Since(r.firstAt)
	}
	return r.evals, ran, err
}

// alerterRows report the cost of the evaluations after a batch (the
// cities a batch changed, and their provinces) and of those of every region.
func alerterRows(evals []alerter.Evaluation, window, ran time.Duration, fired uint64) []Row {
	var batch, all []time.Duration
	var cities, read, failed int
	var firstErr error
	for i, ev := range evals {
		if errors.Is(ev.Err, context.Canceled) {
			continue // cut short by the end of the step
		}
		if ev.Err != nil {
			failed++
			firstErr = cmp.Or(firstErr, ev.Err)
			continue
		}
		if ev.Cities == 0 {
			if i > 0 { // the one at start publishes the year's first alerts
				all = append(all, ev.Took)
			}
			continue
		}
		batch = append(batch, ev.Took)
		cities += ev.Cities
		read += ev.Rows
	}
	var startNote string
	if len(evals) > 0 && evals[0].Cities == 0 {
		startNote = fmt.Sprintf("; the evaluation of every region at start took %.0f ms (%d regions, %d alerts fired in all)", ms(evals[0].Took), evals[0].Rows, fired)
	}
	if firstErr != nil {
		startNote += fmt.Sprintf("; first failure: %v", firstErr)
	}
	p99 := percentile(batch, 0.99)
	rows := []Row{
		{Step: "6 alerter evaluation after a batch p50", Figure: ms(percentile(batch, 0.5)), Unit: "ms", Goal: "-", Met: "-",
			Note: fmt.Sprintf("%d evaluations of the cities announced in one changes window (IKD_ALERTER_CHANGES_WINDOW, %s; %.0f cities named, with repeats, and %.0f regions read on average), %d failed; as of today's date in %d; "+
				"from reading the alerts' history to the last transition applied (alerter.Evaluated)%s",
				len(batch), window, float64(cities)/float64(max(len(batch), 1)), float64(read)/float64(max(len(batch), 1)), failed, nationalYear, startNote)},
		{Step: "6 alerter evaluation after a batch p99", Figure: ms(p99), Unit: "ms", Goal: "< 200 ms", Met: yesNo(len(batch) > 0 && failed == 0 && p99 < 200*time.Millisecond)},
		{Step: "6 alerter time evaluating after batches, share of its run", Figure: 100 * sum(batch).Seconds() / max(ran.Seconds(), 1e-9), Unit: "%", Goal: "info", Met: "-",
			Note: fmt.Sprintf("%d evaluations took %.1f s of the %.1f s from the end of its evaluation at start to the end of the freshness step (the warehouse's time it takes from ingest and analysts)",
				len(batch), sum(batch).Seconds(), ran.Seconds())},
	}
	if len(all) > 0 {
		rows = append(rows, Row{Step: "6 alerter evaluation of every region (each IKD_ALERTER_INTERVAL) max", Figure: ms(percentile(all, 1)), Unit: "ms", Goal: "info", Met: "-",
			Note: fmt.Sprintf("%d scheduled evaluations", len(all))})
	}
	return rows
}

// inNationalYear is now moved into nationalYear.
func inNationalYear() time.Time {
	now := time.Now()
	return now.AddDate(nationalYear-now.In(events.WIB).Year(), 0, 0)
}

// evaluationCosts times the alerter's evaluation of every region with nothing
// else running: as of today's date in nationalYear, which reads the as-of
// views, then as of today, which reads the running views, as a deployed
// alerter does. The first of each is left out: it may publish the year's
// first alerts, or resolve those of nationalYear, ended for that clock.
func evaluationCosts(ctx context.Context, natsURL string, auth broker.Auth, conn driver.Conn, logger *slog.Logger, runs int) ([]Row, error) {
	a, nc, err := newAlerter(ctx, "ikd-bench-alerter-costs", alerter.DefaultConfig().ChangesWindow, natsURL, auth, conn, logger)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	defer a.Close()
	var last alerter.Evaluation
	a.Evaluated = func(ev alerter.Evaluation) { last = ev }
	clocks := []struct {
		name string
		now  func() time.Time
	}{
		{fmt.Sprintf("as of today's date in %d (the as-of views)", nationalYear), inNationalYear},
		{"as of today (the running views)", time.Now},
	}
	took := make([][]time.Duration, len(clocks))
	regions := make([]int, len(clocks))
	for c, clock := range clocks {
		a.Now = clock.now
		for i := 0; i <= runs; i++ {
			if err := a.Evaluate(ctx, nil); err != nil {
				return nil, fmt.Errorf("alerter evaluation %s: %w", clock.name, err)
			}
			if i > 0 {
				took[c] = append(took[c], last.Took)
				regions[c] = last.Rows
			}
		}
	}
	var rows []Row
	for c, clock := range clocks {
		rows = append(rows,
			Row{Step: "6 alerter evaluation of every region, quiet, " + clock.name + " p50", Figure: ms(percentile(took[c], 0.5)), Unit: "ms", Goal: "-", Met: "-",
				Note: fmt.Sprintf("%d evaluations after a first, one after the other, nothing else running; %d regions read each", len(took[c]), regions[c])},
			Row{Step: "6 alerter evaluation of every region, quiet, " + clock.name + " p99", Figure: ms(percentile(took[c], 0.99)), Unit: "ms", Goal: "info", Met: "-"})
	}
	return rows, nil
}

// newAlerter is the project's alerter in its default configuration but for
// its changes window, on a connection of its own named name; close both when
// done.
func newAlerter(ctx context.Context, name string, window time.Duration, natsURL string, auth broker.Auth, conn driver.Conn, logger *slog.Logger) (*alerter.Alerter, *nats.Conn, error) {
	nc, err := broker.Connect(natsURL, name, auth, logger)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	cfg := alerter.DefaultConfig()
	cfg.ChangesWindow = window
	a, err := alerter.New(ctx, cfg, js, conn, logger)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("alerter: %w", err)
	}
	return a, nc, nil
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}
