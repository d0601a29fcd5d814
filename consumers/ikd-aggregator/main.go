// Command ikd-aggregator consumes the event stream into the warehouse.
// Several may run at once: the holder of the aggregator lease writes, the
// others stand by and take over when it stops or dies.
//
//	ikd-aggregator                      run the aggregator
//	ikd-aggregator deadletters          list the dead letters by reason
//	ikd-aggregator replay [--reason R]  republish dead letters (of reason R)
//	ikd-aggregator reconcile [--all]    compare broker and warehouse; exit 1 on a difference
//	ikd-aggregator provision            as the broker's admin: create or update the streams and the lease bucket, apply the schema
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/observe"
)

type Config struct {
	endpoints.Config
	Aggregator aggregator.Config `envconfig:"AGGREGATOR"`
	// PprofAddr, when set, serves Go's profiles (net/http/pprof) there; for
	// measuring, so it must be a loopback address.
	PprofAddr string `envconfig:"PPROF_ADDR"`
	// MetricsListen serves /metrics, /healthz and /readyz (README, Operating).
	MetricsListen string `envconfig:"METRICS_LISTEN" default:"127.0.0.1:9411"`
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		// Subcommands exit 0 when done or clean, 1 on a difference, 2 on error.
		code, done := subcommand(ctx, logger, os.Args[1:], os.Stdout, os.Stderr)
		if done {
			stop()
			os.Exit(code)
		}
	}
	if code := cmdline.Stopped(ctx, logger, "ikd-aggregator", run(ctx, logger)); code != cmdline.ExitOK {
		os.Exit(code)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	config.Log(logger, "ikd-aggregator", &cfg)
	if err := servePprof(cfg.PprofAddr, logger); err != nil {
		return err
	}
	// Served before dialing: /healthz answers, /readyz says "starting".
	obs := observe.New("ikd-aggregator")
	if _, err := obs.Serve(ctx, cfg.MetricsListen, logger); err != nil {
		return err
	}
	ep, err := endpoints.Dial(ctx, cfg.Config, "ikd-aggregator", logger)
	if err != nil {
		return err
	}
	defer ep.Close()
	agg, err := chwriter.Setup(ctx, cfg.Aggregator, ep.JS, ep.DB, cfg.Streams, cfg.ClickHouseCluster, logger)
	if err != nil {
		return err
	}
	// Ready: broker connected, warehouse reachable, consumer bound.
	obs.Broker("ikd-aggregator", ep.NC)
	obs.Warehouse(ep.DB.Ping)
	obs.Consumer(agg.Consumer())
	obs.MustRegister(agg.Collector())
	obs.Started()
	logger.Info("aggregating", "stream", broker.EventsStream, "durable", cfg.Aggregator.Durable)
	return agg.Run(ctx)
}

// Validate refuses a profile address that others could reach, beside what
// the embedded configurations refuse.
func (c *Config) Validate() error {
	var pprof error
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			pprof = config.Invalid("PprofAddr", "must be a loopback host:port, got %q", c.PprofAddr)
		}
	}
	return errors.Join(c.Config.Validate(), pprof, observe.ValidateListen("MetricsListen", c.MetricsListen))
}

func servePprof(addr string, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("IKD_PPROF_ADDR: %w", err)
	}
	logger.Info("profiles served", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	go func() { _ = http.Serve(ln, nil) }() // nil: the mux net/http/pprof registers on
	return nil
}
