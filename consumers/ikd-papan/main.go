// Command ikd-papan serves the papan capaian, the attainment board: the
// nation, its provinces and cities against their IKD targets, as of any day,
// in a browser. It only reads the warehouse; give it a read-only user.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/ikd-pipeline/ikd/consumers/papan"
	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// Config is ikd-papan's configuration: IKD_PAPAN_* and, when
// IKD_PAPAN_CLICKHOUSE_DSN is unset, the pipeline's IKD_CLICKHOUSE_DSN.
type Config struct {
	ClickHouseDSN string       `envconfig:"CLICKHOUSE_DSN" default:"http://127.0.0.1:8123" secret:"dsn"`
	Papan         papan.Config `envconfig:"PAPAN"`
}

const usage = `usage: ikd-papan

Serves the attainment board (papan capaian) on IKD_PAPAN_LISTEN: the nation,
its provinces and cities against their IKD targets, as of any day. Reads the
warehouse only (IKD_PAPAN_CLICKHOUSE_DSN, else IKD_CLICKHOUSE_DSN). Configured
by IKD_* variables (README, Configuration); stops on SIGINT/SIGTERM.
`

func main() {
	if code, done := (cmdline.Command{Usage: usage}).Parse(os.Args[1:], os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		logger.Error("ikd-papan stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if cfg.Papan.ClickHouseDSN == "" {
		cfg.Papan.ClickHouseDSN = cfg.ClickHouseDSN
	}
	config.Log(logger, "ikd-papan", &cfg)
	if err := cfg.Papan.Validate(); err != nil {
		return err
	}
	db, err := warehouse.Open(ctx, cfg.Papan.ClickHouseDSN, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	l, err := net.Listen("tcp", cfg.Papan.Listen)
	if err != nil {
		return fmt.Errorf("IKD_PAPAN_LISTEN: %w", err)
	}
	logger.Info("papan capaian serving", "url", "http://"+l.Addr().String()+"/")
	return papan.New(cfg.Papan, db, logger).Serve(ctx, l)
}
