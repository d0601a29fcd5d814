package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/intake"
)

const (
	// batchSize events go to the broker at a time: enough to keep it busy,
	// few enough to hold in memory whatever the size of the input.
	batchSize = 1000
)

const publishUsage = `usage: ikd-counter publish [--spool DIR] [--wait D] [FILE|-]

Publishes the counter's JSON Lines from FILE, or from stdin, to IKD_NATS_URL.
Rejected lines are reported on stderr (exit 1); nothing is published twice.
With a spool (--spool or IKD_SPOOL_DIR) every valid line is first made durable
there, then forwarded for up to --wait; what the link did not take stays in
the spool for the next run or the office agent (exit 3).
`

// publishCommand is `ikd-counter publish [--spool DIR] [--wait D] [FILE|-]`.
func publishCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("publish", flag.ContinueOnError)
	spoolDir := flags.String("spool", "", "publish through the spool in this directory (default IKD_SPOOL_DIR; none: straight to the broker)")
	wait := flags.Duration("wait", time.Minute, "with a spool: how long to try forwarding before leaving the rest in the spool")
	if code, done := (cmdline.Command{Usage: publishUsage, Flags: flags, MaxArgs: 1}).Parse(args, stdout, stderr); done {
		return code
	}
	in, err := openInput(flags.Arg(0), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	defer in.Close()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if *spoolDir != "" || os.Getenv("IKD_SPOOL_DIR") != "" {
		return publishSpooled(ctx, spooled{dir: *spoolDir, wait: *wait}, in, stdout, stderr, logger)
	}

	c, err := connect(ctx, logger)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	defer c.close()
	t, err := c.publishLines(ctx, in, stderr)
	fmt.Fprintf(stdout, "published %d events (%d duplicates), rejected %d lines\n", t.published, t.duplicates, t.rejected)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	case t.rejected > 0:
		return exitRejected
	default:
		return exitOK
	}
}

// openInput opens the named file, or stdin for "" and "-".
func openInput(name string, stdin io.Reader) (io.ReadCloser, error) {
	if name == "" || name == "-" {
		return io.NopCloser(stdin), nil
	}
	return os.Open(name)
}

// tally counts what became of the input lines.
type tally struct {
	published, duplicates, rejected int
}

// publishLines builds each line of in and publishes the valid ones in
// batches; rejected lines are reported to report and skipped.
func (c *counter) publishLines(ctx context.Context, in io.Reader, report io.Writer) (tally, error) {
	var t tally
	rejected, err := inBatches(in, c.office, report, func(batch []events.Event, _ int) error {
		res, err := c.publisher.Publish(ctx, batch)
		t.published += res.Published
		t.duplicates += res.Duplicates
		return err
	})
	t.rejected = rejected
	return t, err
}

// inBatches builds each line of in, reports the rejected ones to report, and
// passes the events to flush batchSize at a time, with the line of the
// batch's first event; the last call, at the end of in, may get fewer (or
// none). It stops at flush's first error and returns the lines rejected.
func inBatches(in io.Reader, office *intake.Office, report io.Writer, flush func(batch []events.Event, first int) error) (int, error) {
	rejected := 0
	batch := make([]events.Event, 0, batchSize)
	first := 0
	send := func() error {
		err := flush(batch, first)
		batch = batch[:0]
		return err
	}
	err := intake.Lines(in, func(n int, line []byte, tooLong bool) error {
		ev, err := office.Build(line, tooLong)
		if err != nil {
			rejected++
			fmt.Fprintf(report, "line %d: %s\n", n, err)
			return nil
		}
		if len(batch) == 0 {
			first = n
		}
		batch = append(batch, ev)
		if len(batch) < batchSize {
			return nil
		}
		return send()
	})
	if err != nil {
		return rejected, err
	}
	return rejected, send()
}
