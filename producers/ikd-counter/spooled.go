package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/publish"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

// spooled is how `publish --spool` was asked to run.
type spooled struct {
	dir  string        // the spool; empty: IKD_SPOOL_DIR
	wait time.Duration // how long to try forwarding
}

// publishSpooled takes the agent's path: every valid line is made durable in
// the spool first, then forwarded for as long as opts.wait allows. What the
// link did not take stays in the spool for the next publish or the agent.
func publishSpooled(ctx context.Context, opts spooled, in io.Reader, stdout, stderr io.Writer, logger *slog.Logger) int {
	cfg, key, err := loadConfig(logger)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	if opts.dir != "" {
		cfg.SpoolDir = opts.dir
	}
	builder, err := newBuilder(cfg, key)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	sp, err := spool.Open(cfg.SpoolDir, cfg.SpoolLimitBytes, logger)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v; if the office agent runs on it, send the file to the agent instead\n", err)
		return exitUsage
	}
	defer sp.Close()

	office := &intake.Office{Builder: builder, OfficeID: cfg.OfficeID}
	t, err := spoolLines(in, office, sp, stderr)
	fmt.Fprintf(stdout, "spooled %d events, rejected %d lines\n", t.published, t.rejected)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	waiting := forwardFor(ctx, cfg, sp, opts.wait, logger)
	if waiting > 0 {
		fmt.Fprintf(stdout, "%d events wait in the spool %s: the link is down or slow; publish again, or run the agent, to forward them\n", waiting, cfg.SpoolDir)
		return exitWaiting
	}
	fmt.Fprintf(stdout, "forwarded: the spool %s is empty\n", cfg.SpoolDir)
	if t.rejected > 0 {
		return exitRejected
	}
	return exitOK
}

// spoolLines appends the valid lines of in to sp in batches; rejected lines
// are reported to report. It stops at the first batch the spool cannot take.
func spoolLines(in io.Reader, office *intake.Office, sp *spool.Spool, report io.Writer) (tally, error) {
	var t tally
	rejected, err := inBatches(in, office, report, func(batch []events.Event, first int) error {
		n, err := sp.AppendAll(batch)
		t.published += n
		if err != nil {
			return fmt.Errorf("the spool took the events before line %d, and no more: %w", first, err)
		}
		return nil
	})
	t.rejected = rejected
	return t, err
}

// forwardFor forwards sp until it is empty or wait has passed, and returns
// how many events still wait.
func forwardFor(ctx context.Context, cfg Config, sp *spool.Spool, wait time.Duration, logger *slog.Logger) int {
	if sp.Stats().WaitingEvents == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	nc, err := dial(cfg, logger)
	if err != nil {
		logger.Warn("cannot reach the broker; the events stay in the spool", "err", err)
		return sp.Stats().WaitingEvents
	}
	defer nc.Close()
	// As publish does without a spool; an office whose credentials may not
	// declare streams forwards to those that exist.
	if err := provision(ctx, nc, cfg.Streams); err != nil {
		logger.Warn("cannot declare the streams; forwarding to those that exist", "err", err)
	}
	pub, err := publish.New(nc, publish.Options{Ordered: true, RetryFor: wait}, logger)
	if err != nil {
		logger.Warn("cannot publish; the events stay in the spool", "err", err)
		return sp.Stats().WaitingEvents
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sp.Run(runCtx, pub) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for sp.Stats().WaitingEvents > 0 && ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		case err := <-done:
			logger.Error("forwarding stopped", "err", err)
			stop()
			return sp.Stats().WaitingEvents
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		logger.Error("forwarding stopped", "err", err)
	}
	return sp.Stats().WaitingEvents
}
