// Command ikd-bench measures the pipeline on this machine in one process: the
// broker's own ceiling (JetStream async publish with dedup, durable pull
// fetch), the engine's insert ceiling, then the pipeline itself (backlog
// drain, live, freshness) and the memory it used, optionally everything that
// reads the warehouse at national scale (analyst queries beside a 514-row
// read, pages, freshness under an analyst loop with the alerter running, the
// alerter's cost, disk), and prints one table of figures from that one run.
//
//	go run ./deploy/ikd-bench [--events 2000000] [--out bench-results/latest.json] [--national [--national-scale 1]]
//
// Everything runs here: an embedded nats-server on a free port, the chDB
// engine with its ClickHouse HTTP front on a free port, data in a temporary
// directory removed at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/chhttp"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/engine"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

type flags struct {
	events        int
	out           string
	national      bool
	nationalScale float64
	cpuprofile    string
	brokerMsgs    int
	msgSize       int
	engineBatches int
	engineBatch   int
	batchSize     int
	flush         time.Duration
	live          time.Duration
	freshRate     int
	freshDur      time.Duration
	queryRuns     int
	alerterWindow time.Duration
	keep          bool
}

// Row is one line of the table.
type Row struct {
	Step    string   `json:"step"`
	Figure  float64  `json:"figure"`
	Unit    string   `json:"unit"`
	Ceiling *float64 `json:"ceiling,omitempty"`
	Ratio   *float64 `json:"ratio,omitempty"`
	Goal    string   `json:"goal"`
	Met     string   `json:"met"`
	Note    string   `json:"note,omitempty"`
}

func main() {
	var f flags
	flag.IntVar(&f.events, "events", 2_000_000, "events published as the backlog to drain (step 3)")
	flag.StringVar(&f.out, "out", "bench-results/latest.json", "where the table is written as JSON")
	flag.BoolVar(&f.national, "national", false, "also load a national-scale data set and time analyst queries, pages, freshness and the alerter over it (slow)")
	flag.Float64Var(&f.nationalScale, "national-scale", 1.0, "fraction of the national data set (50 million activations, 200 million recorded residents) to load; e.g. 0.04 for a quick check of step 6")
	flag.StringVar(&f.cpuprofile, "cpuprofile", "", "write a pprof CPU profile of the aggregator process during the drain to this file")
	flag.IntVar(&f.brokerMsgs, "broker-msgs", 500_000, "messages for the broker ceiling (step 1)")
	flag.IntVar(&f.msgSize, "msg-size", 300, "message size for the broker ceiling, bytes")
	flag.IntVar(&f.engineBatches, "engine-batches", 10, "batches for the engine ceiling (step 2)")
	flag.IntVar(&f.engineBatch, "engine-batch", 100_000, "events per batch for the engine ceiling")
	flag.IntVar(&f.batchSize, "batch", 10_000, "aggregator BatchSize")
	flag.DurationVar(&f.flush, "flush", 200*time.Millisecond, "aggregator FlushInterval")
	flag.DurationVar(&f.live, "live", 30*time.Second, "duration of the live step (4)")
	flag.IntVar(&f.freshRate, "fresh-rate", 5000, "background events/s during the freshness step (5); at most half the broker's publish ceiling")
	flag.DurationVar(&f.freshDur, "fresh-dur", 20*time.Second, "duration of the freshness step")
	flag.IntVar(&f.queryRuns, "query-runs", 20, "runs of each analyst query (step 6)")
	flag.DurationVar(&f.alerterWindow, "alerter-changes-window", alerter.DefaultConfig().ChangesWindow, "the alerter's IKD_ALERTER_CHANGES_WINDOW in step 6")
	flag.BoolVar(&f.keep, "keep", false, "keep the temporary data directory")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("ikd-bench ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rows, err := run(ctx, f)
	if err != nil {
		log.Printf("FAILED: %v", err)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Step[0] < rows[j].Step[0] })
	if len(rows) > 0 {
		printTable(os.Stdout, rows)
		if werr := writeJSON(f, rows); werr != nil {
			log.Printf("write %s: %v", f.out, werr)
		}
	}
	if err != nil {
		os.Exit(1)
	}
}

func ptr(v float64) *float64 { return &v }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func run(ctx context.Context, f flags) (rows []Row, err error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tmp, err := os.MkdirTemp("", "ikd-bench-")
	if err != nil {
		return nil, err
	}
	if !f.keep {
		defer os.RemoveAll(tmp)
	}
	log.Printf("data in %s", tmp)

	// Broker.
	creds, err := embeddedbroker.NewCredentials()
	if err != nil {
		return nil, err
	}
	b, err := embeddedbroker.Start(embeddedbroker.Config{Dir: filepath.Join(tmp, "nats"), Port: -1, Users: creds.Users(), Logger: logger})
	if err != nil {
		return nil, err
	}
	defer b.Shutdown()

	// Engine and its HTTP front.
	eng, err := engine.Open(filepath.Join(tmp, "ch"), "")
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	if err := os.MkdirAll(filepath.Join(tmp, "http"), 0o750); err != nil {
		return nil, err
	}
	srv, err := chhttp.Listen(eng, chhttp.Config{Addr: "127.0.0.1:0", TempDir: filepath.Join(tmp, "http"), Logger: logger})
	if err != nil {
		return nil, err
	}
	defer srv.Close(context.Background())
	conn, err := warehouse.Open(ctx, "http://"+srv.Addr(), logger)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	log.Printf("broker %s, engine %s at http://%s", b.URL(), eng.Version(), srv.Addr())
	if *agentOnly {
		return agentStep(ctx, tmp, b.URL(), creds.Auth(broker.RoleCounter), logger)
	}

	aggBin, err := buildAggregator(tmp)
	if err != nil {
		return nil, err
	}

	// 1. Broker ceiling.
	log.Printf("step 1: broker ceiling, %d msgs of %d B", f.brokerMsgs, f.msgSize)
	pubCeil, fetchCeil, err := brokerCeiling(ctx, b.URL(), creds.Auth(broker.RoleAdmin), f.brokerMsgs, f.msgSize, 4096, 500)
	if err != nil {
		return rows, err
	}
	pubLazy, err := lazyCeiling(ctx, tmp, creds, f, logger)
	if err != nil {
		return rows, err
	}
	rows = append(rows,
		Row{Step: "1 broker ceiling: js pub async --dedup (file, sync always)", Figure: pubCeil, Unit: "msgs/s", Goal: "-", Met: "-",
			Note: fmt.Sprintf("%d msgs of %d B, Nats-Msg-Id, 4096 pending; the pipeline's broker: on disk before acknowledged", f.brokerMsgs, f.msgSize)},
		Row{Step: "1 broker ceiling: same, fsync every 2m (nats-server default)", Figure: pubLazy, Unit: "msgs/s", Ceiling: ptr(pubCeil), Ratio: ptr(pubCeil / pubLazy),
			Goal: "-", Met: "-", Note: "a second broker, for comparison only; ratio = sync always / this"},
		Row{Step: "1 broker ceiling: js fetch (durable, explicit ack)", Figure: fetchCeil, Unit: "msgs/s", Goal: "-", Met: "-",
			Note: "Fetch batches of 500, Ack each"})
	log.Printf("step 1: publish %.0f msgs/s (sync always; %.0f msgs/s syncing every 2m), fetch %.0f msgs/s", pubCeil, pubLazy, fetchCeil)

	// The aggregator's setup: streams, schema, durable consumer.
	ref, err := region.Load()
	if err != nil {
		return rows, err
	}
	cities := loadCities(ref)
	ps, err := nik.NewPseudonymizer([]byte(nik.DevelopmentKey))
	if err != nil {
		return rows, err
	}
	setupNC, err := broker.Connect(b.URL(), "ikd-bench-setup", creds.Auth(broker.RoleAdmin), logger)
	if err != nil {
		return rows, err
	}
	defer setupNC.Close()
	setupJS, err := jetstream.New(setupNC)
	if err != nil {
		return rows, err
	}
	if err := endpoints.Ready(ctx, setupJS, conn, broker.StreamOptions{}, "", logger); err != nil {
		return rows, err
	}

	// 2. Engine ceiling: the aggregator's write path without the broker.
	log.Printf("step 2: engine ceiling, %d batches of %d", f.engineBatches, f.engineBatch)
	w := aggregatorWriter(conn, time.Now)
	if err := <-w.Begin(ctx); err != nil {
		return rows, fmt.Errorf("engine ceiling: %w", err)
	}
	eg := newGenerator("engine", 1, cities, ps)
	var writeTime time.Duration
	for i := 0; i < f.engineBatches; i++ {
		evs := eg.batch(f.engineBatch)
		recs := make([]warehouse.Record, len(evs))
		for j, ev := range evs {
			recs[j] = warehouse.Record{Event: ev, Seq: uint64(i*f.engineBatch + j + 1)}
		}
		t0 := time.Now()
		if err := w.Write(ctx, recs); err != nil {
			return rows, fmt.Errorf("engine ceiling: %w", err)
		}
		writeTime += time.Since(t0)
	}
	engCeil := float64(f.engineBatches*f.engineBatch) / writeTime.Seconds()
	rows = append(rows, Row{Step: "2 engine ceiling: EventWriter.Write into ikd.events", Figure: engCeil, Unit: "events/s", Goal: "-", Met: "-",
		Note: fmt.Sprintf("%d batches of %d via clickhouse-go HTTP, with whatever counts them on the way in", f.engineBatches, f.engineBatch)})
	log.Printf("step 2: %.0f events/s", engCeil)
	if err := truncateCounts(ctx, conn); err != nil {
		return rows, err
	}

	// Producers: the project's Publisher, two goroutines.
	prodNC, err := broker.Connect(b.URL(), "ikd-bench-producer", creds.Auth(broker.RoleCounter), logger)
	if err != nil {
		return rows, err
	}
	defer prodNC.Close()
	pub, err := publish.New(prodNC, publish.Options{MaxPending: 4096}, logger)
	if err != nil {
		return rows, err
	}
	gens := []*generator{newGenerator("p0", 11, cities, ps), newGenerator("p1", 12, cities, ps)}

	// 3. Backlog drain.
	log.Printf("step 3: publishing a backlog of %d events", f.events)
	t0 := time.Now()
	n, err := publishEvents(ctx, pub, gens, f.events, time.Time{}, 5000)
	if err != nil {
		return rows, fmt.Errorf("backlog publish: %w", err)
	}
	backlogPub := float64(n) / time.Since(t0).Seconds()
	log.Printf("step 3: backlog published in %s (%.0f events/s); draining", time.Since(t0).Round(time.Millisecond), backlogPub)
	// What the producers can publish, in atomic batches, to the synced broker:
	// the background rates below are held under it.
	pubCap := max(pubCeil, backlogPub)
	rows = append(rows, Row{Step: "3 backlog publish: the project's Publisher (atomic batches), sync always", Figure: backlogPub, Unit: "events/s", Ceiling: ptr(pubCeil),
		Ratio: ptr(backlogPub / pubCeil), Goal: "info", Met: "-",
		Note: fmt.Sprintf("%d events from 2 goroutines before the aggregator starts; ceiling: step 1's one message at a time", n)})
	hwmReset := resetHWM()
	t0 = time.Now()
	agg, err := startAggregator(aggBin, b.URL(), creds.Auth(broker.RoleAggregator), "http://"+srv.Addr(), f)
	if err != nil {
		return rows, err
	}
	defer func() {
		if agg != nil {
			_ = agg.stop()
		}
	}()
	if f.cpuprofile != "" {
		go func() {
			// The first 15 s of the drain, from the aggregator's own pprof endpoint.
			time.Sleep(2 * time.Second)
			if perr := agg.cpuProfile(f.cpuprofile, 15*time.Second); perr != nil {
				log.Printf("cpu profile: %v", perr)
			}
		}()
	}
	tDone, err := waitCount(ctx, conn, uint64(n), 100*time.Millisecond, 30*time.Minute)
	if err != nil {
		return rows, fmt.Errorf("drain: %w", err)
	}
	drain := float64(n) / tDone.Sub(t0).Seconds()
	drainPeak := agg.peakRSS()
	rows = append(rows, Row{Step: "3 backlog drain: aggregator into ikd.events", Figure: drain, Unit: "events/s", Ceiling: ptr(fetchCeil),
		Ratio: ptr(drain / fetchCeil), Goal: ">= 0.8 x fetch", Met: yesNo(drain/fetchCeil >= 0.8),
		Note: fmt.Sprintf("%d events in %s, BatchSize %d", n, tDone.Sub(t0).Round(time.Millisecond), f.batchSize)})
	log.Printf("step 3: drained %d in %s: %.0f events/s", n, tDone.Sub(t0).Round(time.Millisecond), drain)

	// 4. Live: publish at full speed while the aggregator runs.
	log.Printf("step 4: live for %s", f.live)
	c0, err := countEvents(ctx, conn)
	if err != nil {
		return rows, err
	}
	t0 = time.Now()
	pn, err := publishEvents(ctx, pub, gens, 0, t0.Add(f.live), 2000)
	if err != nil {
		return rows, fmt.Errorf("live publish: %w", err)
	}
	c1, err := countEvents(ctx, conn)
	if err != nil {
		return rows, err
	}
	liveDur := time.Since(t0)
	live := float64(c1-c0) / liveDur.Seconds()
	livePub := float64(pn) / liveDur.Seconds()
	rows = append(rows, Row{Step: "4 live: visible in ikd.events while publishing", Figure: live, Unit: "events/s", Ceiling: ptr(pubCeil),
		Ratio: ptr(live / pubCeil), Goal: ">= 0.7 x publish", Met: yesNo(live/pubCeil >= 0.7),
		Note: fmt.Sprintf("published %.0f events/s (%.2f of ceiling) over %s", livePub, livePub/pubCeil, liveDur.Round(time.Millisecond))})
	log.Printf("step 4: published %.0f/s, visible %.0f/s; catching up", livePub, live)
	tCatch := time.Now()
	if _, err := waitCount(ctx, conn, uint64(n+pn), 100*time.Millisecond, 10*time.Minute); err != nil {
		return rows, fmt.Errorf("live catch-up: %w", err)
	}
	log.Printf("step 4: caught up in %s", time.Since(tCatch).Round(time.Millisecond))
	aggPeak := agg.peakRSS()
	hwm := procStatus(0, "VmHWM")

	// 5. Freshness.
	// A background rate above what the broker can sync would measure a
	// growing queue, not freshness: keep it to half what the producers
	// could publish.
	freshRate := min(f.freshRate, int(pubCap/2))
	log.Printf("step 5: freshness at %d events/s for %s", freshRate, f.freshDur)
	probeNC, err := broker.Connect(b.URL(), "ikd-bench-probe", creds.Auth(broker.RoleCounter), logger)
	if err != nil {
		return rows, err
	}
	defer probeNC.Close()
	probePub, err := publish.New(probeNC, publish.Options{}, logger)
	if err != nil {
		return rows, err
	}
	fr, err := freshness(ctx, conn, pub, probePub, newGenerator("fresh", 13, cities, ps), &cities[0], freshRate, f.freshDur, 200*time.Millisecond, 0)
	if err != nil {
		return rows, fmt.Errorf("freshness: %w", err)
	}
	p99 := percentile(fr.latencies, 0.99)
	note := fmt.Sprintf("%d of %d probes seen; background %.0f events/s (target %d, held to %d: half the Publisher's rate of step 3); figures are upper bounds (end of the first poll showing the probe); "+
		"lower bounds (start of that poll) p50 %.0f ms, p99 %.0f ms; %d polls of attainment_city, %.0f ms avg each, 50 ms apart",
		len(fr.latencies), fr.probes, fr.bgRate, f.freshRate, freshRate, ms(percentile(fr.lower, 0.5)), ms(percentile(fr.lower, 0.99)), fr.polls, ms(fr.pollMean))
	rows = append(rows,
		Row{Step: "5 freshness p50: publish ack -> counted in attainment_city", Figure: ms(percentile(fr.latencies, 0.5)), Unit: "ms", Goal: "-", Met: "-", Note: note},
		Row{Step: "5 freshness p99", Figure: ms(p99), Unit: "ms", Goal: "< 1000 ms", Met: yesNo(p99 < time.Second && len(fr.latencies) == fr.probes && fr.probes > 0)},
		Row{Step: "5 freshness max", Figure: ms(percentile(fr.latencies, 1)), Unit: "ms", Goal: "-", Met: "-"})
	log.Printf("step 5: p50 %s p99 %s (%d probes)", percentile(fr.latencies, 0.5), p99, fr.probes)

	// 5b. Freshness while an analyst queries the national view in a loop.
	log.Printf("step 5b: freshness while ikd.attainment_province is queried in a loop")
	an := startAnalyst(ctx, conn, "SELECT * FROM ikd.attainment_province")
	fa, err := freshness(ctx, conn, pub, probePub, newGenerator("fresh-analyst", 17, cities, ps), &cities[0], freshRate, f.freshDur, 200*time.Millisecond, 0)
	runs, mean, anErr := an.stop()
	if err != nil {
		return rows, fmt.Errorf("freshness under analyst load: %w", err)
	}
	if anErr != nil {
		return rows, fmt.Errorf("analyst loop: %w", anErr)
	}
	p99a := percentile(fa.latencies, 0.99)
	rows = append(rows,
		Row{Step: "5b freshness p50 while an analyst queries attainment_province in a loop", Figure: ms(percentile(fa.latencies, 0.5)), Unit: "ms", Goal: "-", Met: "-",
			Note: fmt.Sprintf("%d of %d probes seen; background %.0f events/s; %d analyst queries, %.0f ms avg each, back to back", len(fa.latencies), fa.probes, fa.bgRate, runs, ms(mean))},
		Row{Step: "5b freshness p99 under analyst load", Figure: ms(p99a), Unit: "ms", Goal: "< 1000 ms", Met: yesNo(p99a < time.Second && len(fa.latencies) == fa.probes && fa.probes > 0)},
		Row{Step: "5b freshness max under analyst load", Figure: ms(percentile(fa.latencies, 1)), Unit: "ms", Goal: "-", Met: "-"})
	log.Printf("step 5b: p50 %s p99 %s (%d probes, %d analyst queries)", percentile(fa.latencies, 0.5), p99a, fa.probes, runs)

	// 7. Memory during 3 and 4 (reported here, after the pipeline steps).
	hwmNote := "VmHWM reset before step 3 (clear_refs 5)"
	if !hwmReset {
		hwmNote = "VmHWM could not be reset: covers the whole process life"
	}
	rows = append(rows,
		Row{Step: "7 aggregator peak RSS (ikd-aggregator process, VmHWM) during 3+4", Figure: mib(aggPeak), Unit: "MiB", Goal: "< 256 MiB", Met: yesNo(mib(aggPeak) < 256),
			Note: "bin/ikd-aggregator as its own process, as in production, started at the beginning of step 3"},
		Row{Step: "7 aggregator peak RSS during 3 only (drain)", Figure: mib(drainPeak), Unit: "MiB", Goal: "info", Met: "-"},
		Row{Step: "7 bench process VmHWM (broker + engine + producers) during 3+4", Figure: mib(hwm), Unit: "MiB", Goal: "info", Met: "-",
			Note: hwmNote + "; includes the engine's native memory and mapped library pages"})

	if err := agg.stop(); err != nil {
		return rows, fmt.Errorf("aggregator: %w", err)
	}
	agg = nil

	// 8. The office agent, before the national load fills the disk.
	agentRows, err := agentStep(ctx, tmp, b.URL(), creds.Auth(broker.RoleCounter), logger)
	rows = append(rows, agentRows...)
	if err != nil {
		return rows, fmt.Errorf("office agent: %w", err)
	}

	// 6. National scale.
	if f.national {
		env := nationalEnv{conn: conn, dsn: "http://" + srv.Addr(), natsURL: b.URL(), creds: creds, aggBin: aggBin,
			pub: pub, probePub: probePub, cities: cities, ps: ps, pubCap: pubCap, logger: logger}
		if err := nationalStep(ctx, env, f, &rows); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func printTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\tfigure\tunit\tceiling\tratio\tgoal\tmet?")
	for _, r := range rows {
		ceil, ratio := "-", "-"
		if r.Ceiling != nil {
			ceil = fmtNum(*r.Ceiling)
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Step, fmtNum(r.Figure), r.Unit, ceil, ratio, r.Goal, r.Met)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", strings.SplitN(r.Step, ":", 2)[0], r.Note)
		}
	}
}

func fmtNum(v float64) string {
	switch {
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func writeJSON(f flags, rows []Row) error {
	if err := os.MkdirAll(filepath.Dir(f.out), 0o755); err != nil {
		return err
	}
	doc := map[string]any{
		"time":    time.Now().UTC().Format(time.RFC3339),
		"command": strings.Join(os.Args, " "),
		"events":  f.events,
		"cpus":    runtime.NumCPU(),
		"rows":    rows,
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(f.out, append(data, '\n'), 0o644)
}

// lazyCeiling is the publish ceiling of a second broker that fsyncs every
// two minutes, as nats-server does unless told otherwise: what syncing
// every write costs is the difference.
func lazyCeiling(ctx context.Context, tmp string, creds embeddedbroker.Credentials, f flags, logger *slog.Logger) (float64, error) {
	lazy, err := embeddedbroker.Start(embeddedbroker.Config{
		Dir: filepath.Join(tmp, "nats-lazy"), Port: -1, Users: creds.Users(), SyncInterval: 2 * time.Minute, Logger: logger,
	})
	if err != nil {
		return 0, err
	}
	defer lazy.Shutdown()
	pub, _, err := brokerCeiling(ctx, lazy.URL(), creds.Auth(broker.RoleAdmin), f.brokerMsgs, f.msgSize, 4096, 500)
	return pub, err
}
