package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
)

const (
	// maxLine bounds an input line; longer ones are rejected unread, as a
	// valid line is a few hundred bytes.
	maxLine = 64 << 10
	// batchSize events go to the broker at a time: enough to keep it busy,
	// few enough to hold in memory whatever the size of the input.
	batchSize = 1000
)

const publishUsage = `usage: ikd-counter publish [FILE|-]

Publishes the counter's JSON Lines from FILE, or from stdin, to IKD_NATS_URL.
Rejected lines are reported on stderr (exit 1); nothing is published twice.
`

// publishCommand is `ikd-counter publish [FILE|-]`.
func publishCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("publish", flag.ContinueOnError)
	if code, done := (cmdline.Command{Usage: publishUsage, Flags: flags, MaxArgs: 1}).Parse(args, stdout, stderr); done {
		return code
	}
	in, err := openInput(flags.Arg(0), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	defer in.Close()

	c, err := connect(ctx, slog.New(slog.NewTextHandler(stderr, nil)))
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
	batch := make([]events.Event, 0, batchSize)
	flush := func() error {
		res, err := c.publisher.Publish(ctx, batch)
		t.published += res.Published
		t.duplicates += res.Duplicates
		batch = batch[:0]
		return err
	}
	err := eachLine(in, func(n int, line []byte, tooLong bool) error {
		ev, err := c.build(line, tooLong)
		if err != nil {
			t.rejected++
			fmt.Fprintf(report, "line %d: %s\n", n, err)
			return nil
		}
		batch = append(batch, ev)
		if len(batch) < batchSize {
			return nil
		}
		return flush()
	})
	if err != nil {
		return t, err
	}
	return t, flush()
}

// rejection is why a line was rejected, as "<reason>: <detail>". Like
// *events.Error it never holds the NIK.
type rejection struct {
	reason events.Reason
	detail string
}

func (r *rejection) Error() string { return string(r.reason) + ": " + r.detail }

func (c *counter) build(line []byte, tooLong bool) (events.Event, error) {
	if tooLong {
		return events.Event{}, &rejection{events.ReasonOversized, fmt.Sprintf("longer than %d bytes", maxLine)}
	}
	ev, err := c.builder.Build(line)
	var e *events.Error
	if errors.As(err, &e) {
		return events.Event{}, &rejection{e.Reason, detail(e)}
	}
	return ev, err
}

// detail names the field and what is wrong with it; for a NIK, the reason
// nik.Parse gave, which names region codes at most.
func detail(e *events.Error) string {
	d := e.Detail
	var ne *nik.Error
	if errors.As(e, &ne) {
		d = ne.Detail
	}
	switch {
	case e.Field == "":
		return d
	case d == "":
		return e.Field
	default:
		return e.Field + ": " + d
	}
}

// eachLine calls fn with each non-blank line of r, numbered from 1, without
// its line ending. A line longer than maxLine is passed empty, with tooLong.
func eachLine(r io.Reader, fn func(n int, line []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(r, maxLine+2) // the line, then "\r\n"
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if tooLong {
			line = nil
		}
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			if ferr := fn(n, line, tooLong); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}
