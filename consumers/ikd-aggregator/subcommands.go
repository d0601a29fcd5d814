package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ikd-pipeline/ikd/consumers/deadletters"
	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/consumers/replay"
	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
)

const (
	exitOK         = 0
	exitDifference = 1
	exitError      = 2
)

const usage = `usage: ikd-aggregator [COMMAND [FLAGS]]

Without a command, consumes IKD_EVENTS into the warehouse until SIGINT or
SIGTERM; several may run at once: the holder of the aggregator lease writes,
the others stand by and take over when it stops or dies. Configured by IKD_*
variables (README, Configuration).

commands:
  deadletters [--samples N]  list the dead letters by reason: count, oldest,
                             a sample with NIK-like digits redacted
  replay [--reason R]        republish the dead letters (of reason R) to the
                             event stream once their cause is fixed
  reconcile [--all]          compare broker and warehouse up to a cut taken at
                             start; exit 1 on a difference
  provision                  as the broker's admin: create or update the
                             streams and the lease bucket, apply the
                             warehouse schema
  help                       this text; COMMAND --help for a command's

exit status: 0 done (reconcile: clean), 1 reconcile found a difference,
2 usage or other error.
`

// subcommand runs the command named by args[0] and returns its exit status;
// done is false when args name no command and ikd-aggregator should run.
func subcommand(ctx context.Context, logger *slog.Logger, args []string, stdout, stderr io.Writer) (code int, done bool) {
	name := args[0]
	var err error
	switch {
	case cmdline.IsHelp(name):
		fmt.Fprint(stdout, usage)
		return exitOK, true
	case strings.HasPrefix(name, "-"):
		// ikd-aggregator itself has no flags.
		return cmdline.Command{Usage: usage}.Parse(args, stdout, stderr)
	case name == "deadletters":
		err = runDeadLetters(ctx, logger, args[1:], stdout, stderr, &code)
	case name == "replay":
		err = runReplay(ctx, logger, args[1:], stdout, stderr, &code)
	case name == "reconcile":
		err = runReconcile(ctx, logger, args[1:], stdout, stderr, &code)
	case name == "provision":
		err = runProvision(ctx, logger, args[1:], stdout, stderr, &code)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", name, usage)
		return exitError, true
	}
	if err != nil {
		logger.Error("ikd-aggregator "+name+" failed", "err", err)
		return exitError, true
	}
	return code, true
}

// dial loads the configuration and connects to the broker and the warehouse.
func dial(ctx context.Context, logger *slog.Logger, program string) (*endpoints.Endpoints, Config, error) {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return nil, cfg, err
	}
	ep, err := endpoints.Dial(ctx, cfg.Config, program, logger)
	return ep, cfg, err
}

const deadLettersUsage = `usage: ikd-aggregator deadletters [--samples N]

Lists what sits in IKD_DEADLETTER: per reason, how many, the oldest and the
newest (WIB), and the oldest N of each with their detail and payload, any run
of 16 digits (a NIK) redacted. Changes nothing.
`

func runDeadLetters(ctx context.Context, logger *slog.Logger, args []string, stdout, stderr io.Writer, code *int) error {
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	samples := fs.Int("samples", 1, "dead letters shown per reason")
	if c, done := (cmdline.Command{Usage: deadLettersUsage, Flags: fs}).Parse(args, stdout, stderr); done {
		*code = c
		return nil
	}
	ep, _, err := dial(ctx, logger, "ikd-aggregator-deadletters")
	if err != nil {
		return err
	}
	defer ep.Close()
	reasons, err := deadletters.List(ctx, ep.JS, max(*samples, 0))
	if err != nil {
		return err
	}
	return deadletters.Print(stdout, reasons)
}

const replayUsage = `usage: ikd-aggregator replay [--reason R]

Republishes the dead letters in IKD_DEADLETTER (only those of reason R) to
their original subjects and deletes each once the broker has it. Fix the
cause first: a still-invalid event is dead-lettered again.
`

func runReplay(ctx context.Context, logger *slog.Logger, args []string, stdout, stderr io.Writer, code *int) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	reason := fs.String("reason", "", "replay only dead letters of this reason (default: all); one of "+strings.Join(deadletters.Reasons, ", "))
	cmd := cmdline.Command{Usage: replayUsage, Flags: fs}
	if c, done := cmd.Parse(args, stdout, stderr); done {
		*code = c
		return nil
	}
	if *reason != "" {
		if err := deadletters.CheckReason(*reason); err != nil {
			fmt.Fprintf(stderr, "ikd-aggregator replay: %v\n", err)
			*code = exitError
			return nil
		}
	}
	ep, _, err := dial(ctx, logger, "ikd-aggregator-replay")
	if err != nil {
		return err
	}
	defer ep.Close()
	n, err := replay.Replay(ctx, ep.JS, replay.Filter{Reason: *reason}, logger)
	fmt.Fprintf(stdout, "replayed %d dead letters\n", n)
	return err
}

const reconcileUsage = `usage: ikd-aggregator reconcile [--all]

Compares the event ids on IKD_EVENTS (less the dead-lettered ones) with
ikd.events, and the views' counts with the raw events, while the pipeline
runs: only up to the sequence every aggregator (IKD_AGGREGATOR_DURABLE) had
settled when it started. Prints a summary and the differences; exit 0 when
both sides agree, 1 when they differ.
`

func runReconcile(ctx context.Context, logger *slog.Logger, args []string, stdout, stderr io.Writer, code *int) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	all := fs.Bool("all", false, "also print the comparison of every subject")
	if c, done := (cmdline.Command{Usage: reconcileUsage, Flags: fs}).Parse(args, stdout, stderr); done {
		*code = c
		return nil
	}
	ep, cfg, err := dial(ctx, logger, "ikd-aggregator-reconcile")
	if err != nil {
		return err
	}
	defer ep.Close()
	rep, err := reconcile.Reconcile(ctx, ep.JS, ep.DB, reconcile.Options{Durable: cfg.Aggregator.Durable})
	if err != nil {
		return err
	}
	if err := rep.Print(stdout, *all); err != nil {
		return err
	}
	*code = exitOK
	if !rep.Clean() {
		*code = exitDifference
	}
	return nil
}

const provisionUsage = `usage: ikd-aggregator provision

Creates or updates the streams and the lease bucket (ikd_leases) to match the
IKD_STREAM_* settings and applies the warehouse schema. Needs the broker's admin role (IKD_NATS_USER=admin):
the other programs may only look the streams up, and stop with an error
saying to run this when one is missing or differs.
`

func runProvision(ctx context.Context, logger *slog.Logger, args []string, stdout, stderr io.Writer, code *int) error {
	if c, done := (cmdline.Command{Usage: provisionUsage, Flags: flag.NewFlagSet("provision", flag.ContinueOnError)}).Parse(args, stdout, stderr); done {
		*code = c
		return nil
	}
	ep, cfg, err := dial(ctx, logger, "ikd-aggregator-provision")
	if err != nil {
		return err
	}
	defer ep.Close()
	if err := endpoints.Ready(ctx, ep.JS, ep.DB, cfg.Streams, cfg.ClickHouseCluster, logger); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "streams and schema ready")
	return nil
}
