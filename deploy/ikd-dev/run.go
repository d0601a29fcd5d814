package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/observe"
	"github.com/ikd-pipeline/ikd/internal/private"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/producers/publish"
	"github.com/ikd-pipeline/ikd/producers/simulate"
)

func run(ctx context.Context, cfg Config, rate float64, every time.Duration, logger *slog.Logger) error {
	if err := private.Dir(cfg.DataDir); err != nil {
		return err
	}
	key, err := pseudonymKey(cfg, logger)
	if err != nil {
		return err
	}
	// One registry for the whole process: its aggregator and alerter register
	// into it; /readyz says "starting" until both run.
	obs := observe.New("ikd-dev")
	metricsAddr, err := obs.Serve(ctx, cfg.MetricsListen, logger)
	if err != nil {
		return err
	}
	srv, err := startServers(cfg, logger)
	if err != nil {
		return err
	}
	defer srv.stop()
	srv.describe(cfg.DataDir, os.Stdout)
	fmt.Fprintf(os.Stdout, "  metrics         http://%s/metrics   (and /healthz, /readyz)\n", metricsAddr)
	describeKey(cfg, key, os.Stdout)

	// The admin provisions the streams; each component then connects with
	// its own role, as it would in production.
	ep, err := endpoints.Dial(ctx, endpoints.Config{NatsURL: srv.natsURL, NATS: srv.auth(broker.RoleAdmin), ClickHouseDSN: srv.dsn, Streams: cfg.Streams}, "ikd-dev", logger)
	if err != nil {
		return err
	}
	defer ep.Close()
	if err := endpoints.Ready(ctx, ep.JS, ep.DB, cfg.Streams, "", logger); err != nil {
		return err
	}
	aggJS, err := srv.connect(broker.RoleAggregator, "ikd-dev-aggregator", logger)
	if err != nil {
		return err
	}
	agg, err := chwriter.Setup(ctx, cfg.Aggregator, aggJS, ep.DB, cfg.Streams, "", logger)
	if err != nil {
		return err
	}
	alerterJS, err := srv.connect(broker.RoleAlerter, "ikd-dev-alerter", logger)
	if err != nil {
		return err
	}
	// The live table marks firing alerts; a line for each transition would
	// bury it, so only the alerter's own trouble is logged here.
	alerts, err := alerter.Setup(ctx, cfg.Alerter, alerterJS, ep.DB, cfg.Streams, "", slog.New(atLeast{logger.Handler(), slog.LevelWarn}))
	if err != nil {
		return err
	}
	defer alerts.Close()
	obs.Broker("aggregator", aggJS.Conn())
	obs.Broker("alerter", alerterJS.Conn())
	obs.Warehouse(ep.DB.Ping)
	obs.Consumer(agg.Consumer())
	obs.Consumer(alerts.Consumer())
	obs.MustRegister(agg.Collector(), alerts.Collector())

	if rate > 0 {
		if err := seedDemoYear(ctx, cfg.Demo, ep.DB, os.Stdout); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	// Each part runs until ctx ends; the first to fail stops the others.
	goPart := func(name string, part func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := part(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	goPart("aggregator", agg.Run)
	goPart("alerter", alerts.Run)
	obs.Started()
	if err := startPapan(ctx, cfg.Papan, srv.dsn, os.Stdout, goPart, logger); err != nil {
		cancel(err)
		wg.Wait()
		return err
	}
	if rate > 0 {
		counterJS, err := srv.connect(broker.RoleCounter, "ikd-dev-simulator", logger)
		if err != nil {
			cancel(err)
			wg.Wait()
			return err
		}
		goPart("simulator", func(ctx context.Context) error { return runSimulator(ctx, key, rate, counterJS.Conn(), logger) })
	}
	goPart("offices", func(ctx context.Context) error {
		return runOffices(ctx, cfg, key, srv.natsURL, srv.auth(broker.RoleCounter), logger)
	})
	fmt.Fprintf(os.Stdout, "  ready: aggregator and alerter running, simulator at %g events/s; Ctrl-C stops\n", rate)
	if every > 0 {
		goPart("table", func(ctx context.Context) error { return liveTable(ctx, ep.DB, ep.JS, every, os.Stdout) })
	}
	<-ctx.Done()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	logger.Info("stopped cleanly; data kept", "data_dir", cfg.DataDir)
	return nil
}

// connect opens a connection to the broker as role, drained when the
// servers stop.
func (s *servers) connect(role broker.Role, name string, logger *slog.Logger) (jetstream.JetStream, error) {
	nc, err := broker.Connect(s.natsURL, name, s.auth(role), logger)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// pseudonymKey is the key of a development run: IKD_PSEUDONYM_KEY when set
// (which may be the public development key), else the random key ikd-dev
// made in its data directory.
func pseudonymKey(cfg Config, logger *slog.Logger) ([]byte, error) {
	if cfg.PseudonymKey == "" {
		return nik.DevelopmentKeyFile(keyFile(cfg))
	}
	key, public, err := nik.ConfiguredKey(cfg.PseudonymKey, true)
	if err != nil {
		return nil, fmt.Errorf("IKD_PSEUDONYM_KEY: %w (or leave it unset: ikd-dev makes a key of its own)", err)
	}
	if public {
		logger.Warn("IKD_PSEUDONYM_KEY is the public development key: its pseudonyms protect nobody")
	}
	return key, nil
}

func keyFile(cfg Config) string { return filepath.Join(cfg.DataDir, nik.KeyFileName) }

// describeKey says which key the simulator uses and how a counter publishes
// with the same one, without printing the key.
func describeKey(cfg Config, key []byte, w io.Writer) {
	if cfg.PseudonymKey != "" {
		fmt.Fprintf(w, "  pseudonym key   IKD_PSEUDONYM_KEY, id %s\n", nik.KeyID(key))
		return
	}
	abs, _ := filepath.Abs(keyFile(cfg))
	fmt.Fprintf(w, "  pseudonym key   %s, id %s   (counters of this box: IKD_PSEUDONYM_KEY=$(cat %s))\n", abs, nik.KeyID(key), abs)
}

func runSimulator(ctx context.Context, key []byte, rate float64, nc *nats.Conn, logger *slog.Logger) error {
	pseudonyms, err := nik.NewPseudonymizer(key)
	if err != nil {
		return fmt.Errorf("IKD_PSEUDONYM_KEY: %w", err)
	}
	ref, err := region.Load()
	if err != nil {
		return err
	}
	pub, err := publish.New(nc, publish.Options{}, logger)
	if err != nil {
		return err
	}
	builder := &events.Builder{Ref: ref, Pseudonyms: pseudonyms, Now: time.Now, FutureTolerance: time.Minute}
	logger.Info("simulating service counters", "rate_per_s", rate)
	return simulate.Run(ctx, simulate.Config{Rate: rate, Seed: time.Now().UnixNano(), Now: time.Now}, builder, pub, nil)
}

// atLeast passes on the records of its level and above.
type atLeast struct {
	slog.Handler
	level slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(attrs []slog.Attr) slog.Handler {
	return atLeast{h.Handler.WithAttrs(attrs), h.level}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{h.Handler.WithGroup(name), h.level}
}
