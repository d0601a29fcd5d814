// Command ikd-alerter raises alerts when a region falls behind its IKD
// activation target: it re-evaluates the regions the aggregator announces on
// IKD_CHANGES, and every region each IKD_ALERTER_INTERVAL, records every
// transition in ikd.alerts and publishes it to IKD_ALERTS (and a webhook).
// Any number may run at once: each transition is recorded and published once.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/observe"
)

type Config struct {
	endpoints.Config
	Alerter alerter.Config `envconfig:"ALERTER"`
	// MetricsListen serves /metrics, /healthz and /readyz (README, Operating).
	MetricsListen string `envconfig:"METRICS_LISTEN" default:"127.0.0.1:9412"`
}

// Validate checks the metrics address beside what the embedded
// configurations check.
func (c *Config) Validate() error {
	return errors.Join(c.Config.Validate(), observe.ValidateListen("MetricsListen", c.MetricsListen))
}

const usage = `usage: ikd-alerter

Raises alerts when a region falls behind its activation target: evaluates the
regions announced on IKD_CHANGES and every region each IKD_ALERTER_INTERVAL,
records each transition in ikd.alerts and publishes it to IKD_ALERTS (and to
IKD_ALERTER_WEBHOOK_URL). Several may run at once; each transition is still
recorded and published once. Configured by IKD_* variables (README,
Configuration); stops on SIGINT/SIGTERM.
`

func main() {
	if code, done := (cmdline.Command{Usage: usage}).Parse(os.Args[1:], os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if code := cmdline.Stopped(ctx, logger, "ikd-alerter", run(ctx, logger)); code != cmdline.ExitOK {
		os.Exit(code)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	config.Log(logger, "ikd-alerter", &cfg)
	// Served before dialing: /healthz answers, /readyz says "starting".
	obs := observe.New("ikd-alerter")
	if _, err := obs.Serve(ctx, cfg.MetricsListen, logger); err != nil {
		return err
	}
	ep, err := endpoints.Dial(ctx, cfg.Config, "ikd-alerter", logger)
	if err != nil {
		return err
	}
	defer ep.Close()
	a, err := alerter.Setup(ctx, cfg.Alerter, ep.JS, ep.DB, cfg.Streams, cfg.ClickHouseCluster, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	// Ready: broker connected, warehouse reachable, consumer bound.
	obs.Broker("ikd-alerter", ep.NC)
	obs.Warehouse(ep.DB.Ping)
	obs.Consumer(a.Consumer())
	obs.MustRegister(a.Collector())
	obs.Started()
	logger.Info("alerting", "changes", broker.ChangesStream, "alerts", broker.AlertsStream, "durable", cfg.Alerter.Durable, "interval", cfg.Alerter.Interval)
	return a.Run(ctx)
}
