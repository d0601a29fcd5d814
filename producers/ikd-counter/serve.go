package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/producers/agent"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

const serveUsage = `usage: ikd-counter serve

Runs the office agent until interrupted: counter applications POST events
(JSON Lines or a JSON array) to http://IKD_AGENT_LISTEN/v1/events; the agent
answers once they are fsynced in the spool IKD_SPOOL_DIR and forwards them to
IKD_NATS_URL in order, resuming after any outage. GET /v1/status and
/metrics show what waits. Needs IKD_OFFICE_ID and IKD_SPOOL_DIR (README, The
office agent).
`

// serveCommand is `ikd-counter serve`: the office agent, until interrupted.
func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := (cmdline.Command{Usage: serveUsage}).Parse(args, stdout, stderr); done {
		return code
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, logger); err != nil {
		fmt.Fprintf(stderr, "ikd-counter: %v\n", err)
		return exitUsage
	}
	return exitOK
}

func serve(ctx context.Context, logger *slog.Logger) error {
	cfg, key, err := loadConfig(logger)
	if err != nil {
		return err
	}
	if err := cfg.Config.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	builder, err := newBuilder(cfg, key)
	if err != nil {
		return err
	}
	sp, err := spool.Open(cfg.SpoolDir, cfg.SpoolLimitBytes, logger)
	if err != nil {
		return err
	}
	defer sp.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("IKD_AGENT_LISTEN %s: %w", cfg.Listen, err)
	}
	office := &intake.Office{Builder: builder, OfficeID: cfg.OfficeID}
	a := agent.New(cfg.Config, sp, office, func() (*nats.Conn, error) { return dial(cfg, logger) }, logger)
	return a.Run(ctx, ln)
}
