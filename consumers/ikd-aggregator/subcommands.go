package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/consumers/replay"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
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

// dial loads the configuration and connects to the broker and the warehouse.
func dial(ctx context.Context, logger *slog.Logger, program string) (*endpoints.Endpoints, error) {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return nil, err
	}
	return endpoints.Dial(ctx, cfg.Config, program, logger)
}

func runReplay(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	reason := fs.String("reason", "", "replay only dead letters of this reason (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ep, err := dial(ctx, logger, "ikd-aggregator-replay")
	if err != nil {
		return err
	}
	defer ep.Close()
	n, err := replay.Replay(ctx, ep.JS, replay.Filter{Reason: *reason}, logger)
	fmt.Printf("replayed %d dead letters\n", n)
	return err
}

func runReconcile(ctx context.Context, logger *slog.Logger, args []string) (int, error) {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	ep, err := dial(ctx, logger, "ikd-aggregator-reconcile")
	if err != nil {
		return exitError, err
	}
	defer ep.Close()
	rep, err := reconcile.Reconcile(ctx, ep.JS, ep.DB)
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
