package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// nationalEnv is what step 6 takes over from the steps before it.
type nationalEnv struct {
	conn          driver.Conn
	dsn           string // the engine's HTTP front
	natsURL       string
	creds         embeddedbroker.Credentials
	aggBin        string
	pub, probePub *publish.Publisher
	cities        []city
	ps            *nik.Pseudonymizer
	pubCap        float64 // what the producers publish to the synced broker (steps 1 and 3)
	logger        *slog.Logger
}

// onDiskBefore is what every ikd table held on disk at national scale
// before issue 12 (the run of 2026-11-26), the figure not to exceed.
const onDiskBefore = 2615.0 // MiB

// nationalStep loads the national-scale data set, checks that the views
// count it exactly, then times what reads it: the analyst queries beside a
// 514-row read, the pages, and freshness with an analyst querying the
// national views in a loop and the alerter running; last, what it takes on
// disk.
func nationalStep(ctx context.Context, env nationalEnv, f flags, rows *[]Row) error {
	began := time.Now()
	conn := env.conn
	activations := int64(math.Round(50_000_000 * f.nationalScale))
	recorded := int64(math.Round(200_000_000 * f.nationalScale))
	log.Printf("step 6: national load of %d activations, %d enrolments, %d recorded residents (scale %.3g)", activations, activations/10, recorded, f.nationalScale)
	took, err := nationalLoad(ctx, conn, activations, recorded, 5_000_000)
	if err != nil {
		return err
	}
	tRecount := time.Now()
	if err := fillLedger(ctx, conn); err != nil {
		return fmt.Errorf("national: count the loaded events: %w", err)
	}
	recount := time.Since(tRecount)
	if err := conn.Exec(ctx, "OPTIMIZE TABLE ikd.first_seen"); err != nil {
		log.Printf("step 6: optimize first_seen: %v", err)
	}
	parts, err := settle(ctx, conn, 10*time.Minute)
	if err != nil {
		return err
	}
	loaded := activations + activations/10
	*rows = append(*rows, Row{Step: "6 national load: INSERT SELECT FROM numbers() into ikd.events", Figure: float64(loaded) / took.Seconds(), Unit: "rows/s", Goal: "info", Met: "-",
		Note: fmt.Sprintf("%d activations and %d enrolments of distinct residents in %d over 514 cities, targets 25 %% of %d recorded residents (scale %.3g), in %s; counted after the load in %s (warehouse.Recount); then OPTIMIZE first_seen, and reads timed once no merge ran (active parts: %s)",
			activations, activations/10, nationalYear, recorded, f.nationalScale, took.Round(time.Second), recount.Round(time.Millisecond), parts)})
	loadDone := time.Now()

	queries, err := nationalQueries(ctx, conn)
	if err != nil {
		return err
	}
	exact, err := nationalExact(ctx, conn, queries, activations)
	*rows = append(*rows, exact...)
	if err != nil {
		return err
	}
	tAnalyst := time.Now()
	ts := interleavedLatency(ctx, conn, append(queries, viewQuery{name: "reference", sql: referenceQuery}), f.queryRuns)
	ref := ts[len(ts)-1]
	if ref.err != nil {
		return fmt.Errorf("reference read: %w", ref.err)
	}
	refP99 := percentile(ref.lat, 0.99)
	*rows = append(*rows, Row{Step: "6 analyst p99: " + referenceQuery + " (the reference)", Figure: ms(refP99), Unit: "ms", Goal: "info", Met: "-",
		Note: fmt.Sprintf("%d rows; p50 %.1f ms; %d runs taking turns with the views'; each view's ceiling column is this p99, its ratio the view's p99 over it",
			ref.rows, ms(percentile(ref.lat, 0.5)), len(ref.lat))})
	*rows = append(*rows, analystRows(queries, ts[:len(queries)], ref)...)
	analystTook := time.Since(tAnalyst)

	tPages := time.Now()
	pages, err := pageLatency(ctx, conn, nationalAsOf, f.queryRuns)
	*rows = append(*rows, pages...)
	if err != nil {
		return err
	}
	pagesTook := time.Since(tPages)

	tFresh := time.Now()
	// The analyst's loop runs the views that answered above.
	var working []viewQuery
	for i, q := range queries {
		if ts[i].err == nil {
			working = append(working, q)
		}
	}
	if len(working) == 0 {
		return fmt.Errorf("no attainment view answered")
	}
	fresh, err := nationalFreshness(ctx, env, f, working)
	*rows = append(*rows, fresh...)
	if err != nil {
		return err
	}
	freshTook := time.Since(tFresh)

	disk, err := diskRows(ctx, conn, f.nationalScale)
	*rows = append(*rows, disk...)
	if err != nil {
		return err
	}

	tLedger := time.Now()
	ledger, err := ledgerLookups(ctx, conn, newGenerator("ledger", 5, env.cities, env.ps), activations, 5, 5000)
	*rows = append(*rows, ledger...)
	if err != nil {
		return err
	}
	ledgerTook := time.Since(tLedger)
	*rows = append(*rows, Row{Step: "6 national step wall time", Figure: time.Since(began).Seconds(), Unit: "s", Goal: "info", Met: "-",
		Note: fmt.Sprintf("load and count %s, exactness checks %s, analyst queries %s, pages %s, freshness at national scale %s, ledger writes %s",
			loadDone.Sub(began).Round(time.Second), tAnalyst.Sub(loadDone).Round(time.Second), analystTook.Round(time.Second),
			pagesTook.Round(time.Second), freshTook.Round(time.Second), ledgerTook.Round(time.Second))})
	return nil
}

// fillLedger counts the residents the national load inserted straight into
// ikd.events once in the first-seen ledger, as the migration counts an
// existing warehouse's; nationalExact then checks the result from the views.
func fillLedger(ctx context.Context, conn driver.Conn) error {
	return warehouse.Recount(ctx, conn, nil)
}

// nationalExact checks that every view counts each loaded activation once,
// as of the year's end and as of nationalAsOf, against ikd.events itself, so
// that the latencies timed after are those of exact answers. A view off the
// mark is a row that misses its goal; the run goes on.
func nationalExact(ctx context.Context, conn driver.Conn, queries []viewQuery, activations int64) ([]Row, error) {
	var inYear, byAsOf uint64
	err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(), countIf(toDate(occurred_at, 'Asia/Jakarta') <= '%s') FROM ikd.events
		WHERE type = 'activation' AND toYear(occurred_at, 'Asia/Jakarta') = %d`, nationalAsOf, nationalYear)).Scan(&inYear, &byAsOf)
	if err != nil {
		return nil, fmt.Errorf("count loaded activations: %w", err)
	}
	if inYear != uint64(activations) {
		return nil, fmt.Errorf("ikd.events holds %d activations in %d, want the %d loaded", inYear, nationalYear, activations)
	}
	var rows []Row
	for _, q := range queries {
		want := inYear
		if q.asOf {
			want = byAsOf
		}
		var got uint64
		sql := "SELECT toUInt64(sum(activated)) FROM (" + q.sql + ")"
		if err := conn.QueryRow(ctx, sql).Scan(&got); err != nil {
			rows = append(rows, Row{Step: "6 exact: " + q.name, Unit: "activated", Goal: fmt.Sprintf("= %d", want), Met: "NO", Note: err.Error()})
			continue
		}
		rows = append(rows, Row{Step: "6 exact: " + q.name, Figure: float64(got), Unit: "activated", Goal: fmt.Sprintf("= %d", want), Met: yesNo(got == want),
			Note: "sum of activated against the loaded activations counted in ikd.events"})
		log.Printf("step 6: %s counts %d activated, want %d", q.name, got, want)
	}
	return rows, nil
}

// nationalFreshness restarts the aggregator, starts the alerter, and measures
// freshness while an analyst queries the national views in a loop, then
// reports the alerter's evaluations meanwhile and the aggregator's memory.
func nationalFreshness(ctx context.Context, env nationalEnv, f flags, queries []viewQuery) ([]Row, error) {
	agg, err := startAggregator(env.aggBin, env.natsURL, env.creds.Auth(broker.RoleAggregator), env.dsn, f)
	if err != nil {
		return nil, err
	}
	defer func() {
		if agg != nil {
			_ = agg.stop()
		}
	}()
	alConn, err := warehouse.Open(ctx, env.dsn, env.logger)
	if err != nil {
		return nil, err
	}
	defer alConn.Close()
	al, err := startAlerter(ctx, f.alerterWindow, env.natsURL, env.creds.Auth(broker.RoleAlerter), alConn, env.logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if al != nil {
			_, _, _ = al.stop()
		}
	}()
	if err := al.started(ctx, 20*time.Minute); err != nil {
		return nil, err
	}
	marker := &env.cities[0]
	if err := waitCounting(ctx, env.conn, env.probePub, newGenerator("ready", 19, env.cities, env.ps), marker, 10*time.Minute); err != nil {
		return nil, err
	}

	anConn, err := warehouse.Open(ctx, env.dsn, env.logger)
	if err != nil {
		return nil, err
	}
	defer anConn.Close()
	sqls := make([]string, len(queries))
	for i, q := range queries {
		sqls[i] = q.sql
	}
	rate := min(f.freshRate, int(env.pubCap/2))
	probeEvery := min(200*time.Millisecond, f.freshDur/60)
	log.Printf("step 6: freshness at national scale, background %d events/s (target %d), a probe every %s for %s, analyst and alerter running",
		rate, f.freshRate, probeEvery, f.freshDur)
	an := startAnalyst(ctx, anConn, sqls...)
	fr, err := freshness(ctx, env.conn, env.pub, env.probePub, newGenerator("fresh-national", 23, env.cities, env.ps), marker, rate, f.freshDur, probeEvery, 50)
	runs, mean, anErr := an.stop()
	if err != nil {
		return nil, fmt.Errorf("freshness at national scale: %w", err)
	}
	evals, alRan, alErr := al.stop()
	fired := al.a.Stats.Fired.Load()
	al = nil
	if alErr != nil {
		return nil, fmt.Errorf("alerter: %w", alErr)
	}
	aggPeak := agg.peakRSS()
	if err := agg.stop(); err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	agg = nil

	analystNote := fmt.Sprintf("%d analyst queries over the %d national views in turn, %.0f ms avg each, back to back on their own connection", runs, len(queries), ms(mean))
	if anErr != nil {
		analystNote = fmt.Sprintf("the analyst loop failed after %d queries: %v", runs, anErr)
	}
	p99 := percentile(fr.latencies, 0.99)
	enough := len(fr.latencies) == fr.probes && fr.probes >= 50
	rows := []Row{
		{Step: "6 freshness p50 at national scale, analyst loop and alerter running", Figure: ms(percentile(fr.latencies, 0.5)), Unit: "ms", Goal: "-", Met: "-",
			Note: fmt.Sprintf("%d of %d probes seen (at least 50 wanted), one every %s; %s; alerter in its default configuration; "+
				"upper bounds, lower bounds p50 %.0f ms, p99 %.0f ms; %d polls of attainment_city, %.0f ms avg each",
				len(fr.latencies), fr.probes, probeEvery, analystNote, ms(percentile(fr.lower, 0.5)), ms(percentile(fr.lower, 0.99)), fr.polls, ms(fr.pollMean))},
		{Step: "6 freshness p99 at national scale", Figure: ms(p99), Unit: "ms", Goal: "< 1000 ms", Met: yesNo(p99 < time.Second && enough && anErr == nil)},
		{Step: "6 freshness max at national scale", Figure: ms(percentile(fr.latencies, 1)), Unit: "ms", Goal: "-", Met: "-"},
		{Step: "6 freshness background rate at national scale", Figure: fr.bgRate, Unit: "events/s", Ceiling: ptr(env.pubCap), Ratio: ptr(fr.bgRate / env.pubCap),
			Goal: fmt.Sprintf(">= %d events/s", f.freshRate), Met: yesNo(fr.bgRate >= 0.95*float64(f.freshRate)),
			Note: fmt.Sprintf("target %d events/s, held to %d (at most half the Publisher's rate of step 3; the ceiling column), achieved %.0f", f.freshRate, rate, fr.bgRate)},
		{Step: "6 aggregator peak RSS during freshness at national scale", Figure: mib(aggPeak), Unit: "MiB", Goal: "< 256 MiB", Met: yesNo(mib(aggPeak) < 256),
			Note: "a new ikd-aggregator process, started after the national load"},
	}
	rows = append(rows, alerterRows(evals, f.alerterWindow, alRan, fired)...)
	costs, err := evaluationCosts(ctx, env.natsURL, env.creds.Auth(broker.RoleAlerter), alConn, env.logger, 10)
	if err != nil {
		return nil, err
	}
	rows = append(rows, costs...)
	log.Printf("step 6: freshness at national scale p50 %s p99 %s (%d probes, %d analyst queries, background %.0f/s)",
		percentile(fr.latencies, 0.5), p99, fr.probes, runs, fr.bgRate)
	return rows, nil
}

// waitCounting publishes one activation in the marker city and waits until
// attainment_city counts it: the aggregator just started holds its place
// and has written what was published before.
func waitCounting(ctx context.Context, conn driver.Conn, pub *publish.Publisher, g *generator, marker *city, timeout time.Duration) error {
	const q = "SELECT activated FROM ikd.attainment_city WHERE city_code = ? AND year = toYear(now(), 'Asia/Jakarta')"
	var base uint64
	if err := conn.QueryRow(ctx, q, marker.code).Scan(&base); err != nil {
		return fmt.Errorf("marker before the aggregator: %w", err)
	}
	if _, err := pub.Publish(ctx, []events.Event{g.event(marker, events.TypeActivation, time.Now())}); err != nil {
		return err
	}
	end := time.Now().Add(timeout)
	for {
		var n uint64
		if err := conn.QueryRow(ctx, q, marker.code).Scan(&n); err != nil {
			return fmt.Errorf("marker: %w", err)
		}
		if n > base {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("the aggregator counted nothing within %s of its start", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// diskRows are what each ikd table holding data takes on disk, and all of
// them against what they took before issue 12 (in proportion at a smaller
// scale).
func diskRows(ctx context.Context, conn driver.Conn, scale float64) ([]Row, error) {
	sizes, err := diskSizes(ctx, conn)
	if err != nil {
		return nil, err
	}
	var rows []Row
	var sum uint64
	for _, s := range sizes {
		sum += s.bytes
		if s.bytes >= 1<<20 {
			rows = append(rows, Row{Step: "6 on disk: ikd." + s.table, Figure: mib(s.bytes), Unit: "MiB", Goal: "info", Met: "-",
				Note: fmt.Sprintf("%d rows in active parts (system.parts)", s.rows)})
		}
	}
	limit := onDiskBefore * scale
	rows = append(rows, Row{Step: "6 on disk: all ikd tables", Figure: mib(sum), Unit: "MiB", Goal: fmt.Sprintf("<= %.0f MiB", limit), Met: yesNo(mib(sum) <= limit),
		Note: fmt.Sprintf("the goal is the %.0f MiB of the design before issue 12 at scale 1, times the scale; both include the events of steps 2 to 5, which do not scale", onDiskBefore)})
	return rows, nil
}
