package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/producers/simulate"
)

const simulateUsage = `usage: ikd-counter simulate --rate N [--duration D] [--seed S]

Publishes simulated events of service counters across Indonesia to
IKD_NATS_URL at N events per second.
`

// simulateCommand is `ikd-counter simulate --rate N [--duration D] [--seed S]`.
// It runs until the duration is over, or until interrupted when there is none.
func simulateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg simulate.Config
	flags := flag.NewFlagSet("simulate", flag.ContinueOnError)
	flags.Float64Var(&cfg.Rate, "rate", 0, "events per second")
	flags.DurationVar(&cfg.Duration, "duration", 0, "how long to run, such as 30s; 0 runs until interrupted")
	flags.Int64Var(&cfg.Seed, "seed", 1, "the same seed gives the same residents, offices and mix")
	cmd := cmdline.Command{Usage: simulateUsage, Flags: flags}
	if code, done := cmd.Parse(args, stdout, stderr); done {
		return code
	}
	if cfg.Rate <= 0 || cfg.Duration < 0 {
		fmt.Fprint(stderr, "ikd-counter simulate: want a positive --rate and a duration of 0 or more\n\n")
		cmd.Print(stderr)
		return exitUsage
	}

	c, err := connect(ctx, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	defer c.close()
	progress := func(p simulate.Progress) {
		fmt.Fprintf(stderr, "simulate: %s sent, %s acked, %s/s\n", thousands(p.Sent), thousands(p.Acked), thousands(int(p.Rate+0.5)))
	}
	err = simulate.Run(ctx, cfg, c.builder, c.publisher, progress)
	// An interrupt is how a simulation without a duration ends.
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitRejected
	}
	return exitOK
}

// thousands writes a count with commas between groups of three digits:
// 12,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
