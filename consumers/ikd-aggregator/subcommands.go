package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/consumers/replay"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

const (
	exitOK         = 0
	exitDifference = 1
	exitError      = 2
)

// subcommand runs `replay` or `reconcile` and returns the exit code.
func subcommand(ctx context.Context, logger *slog.Logger, name string, args []string) int {
	var err error
	code := exitOK
	switch name {
	case "replay":
		err = runReplay(ctx, logger, args)
	case "reconcile":
		code, err = runReconcile(ctx, logger, args)
	case "help", "-h", "--help":
		fmt.Fprintln(os.Stderr, "usage: ikd-aggregator [replay [--reason R] | reconcile]")
		return exitOK
	default:
		err = fmt.Errorf("unknown subcommand %q; usage: ikd-aggregator [replay [--reason R] | reconcile]", name)
	}
	if err != nil {
		logger.Error("ikd-aggregator "+name+" failed", "err", err)
		return exitError
	}
	return code
}

// connectJS loads the configuration and connects to the broker.
func connectJS(logger *slog.Logger, program string) (*Config, jetstream.JetStream, func(), error) {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return nil, nil, nil, err
	}
	nc, err := broker.Connect(cfg.NatsURL, program, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return &cfg, js, nc.Close, nil
}

func runReplay(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	reason := fs.String("reason", "", "replay only dead letters of this reason (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, js, done, err := connectJS(logger, "ikd-aggregator-replay")
	if err != nil {
		return err
	}
	defer done()
	n, err := replay.Replay(ctx, js, replay.Filter{Reason: *reason}, logger)
	fmt.Printf("replayed %d dead letters\n", n)
	return err
}

func runReconcile(ctx context.Context, logger *slog.Logger, args []string) (int, error) {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	cfg, js, done, err := connectJS(logger, "ikd-aggregator-reconcile")
	if err != nil {
		return exitError, err
	}
	defer done()
	conn, err := warehouse.Open(ctx, cfg.ClickHouseDSN, logger)
	if err != nil {
		return exitError, err
	}
	defer conn.Close()
	rep, err := reconcile.Reconcile(ctx, js, conn)
	if err != nil {
		return exitError, err
	}
	if err := rep.Print(os.Stdout); err != nil {
		return exitError, err
	}
	if !rep.Clean() {
		return exitDifference, nil
	}
	return exitOK, nil
}
