package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/ikd-pipeline/ikd/consumers/papan"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// startPapan opens the attainment board on cfg.Papan.Listen, reading the
// warehouse at IKD_PAPAN_CLICKHOUSE_DSN or else ikd-dev's own, prints its
// address to w and hands its serving to goPart.
func startPapan(ctx context.Context, cfg papan.Config, dsn string, w io.Writer, goPart func(string, func(context.Context) error), logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.ClickHouseDSN != "" {
		dsn = cfg.ClickHouseDSN
	}
	db, err := warehouse.Open(ctx, dsn, logger)
	if err != nil {
		return fmt.Errorf("papan: %w", err)
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		db.Close()
		return fmt.Errorf("IKD_PAPAN_LISTEN: %w", err)
	}
	fmt.Fprintf(w, "  papan capaian   http://%s/   (the attainment board in a browser; IKD_PAPAN_LISTEN)\n", l.Addr())
	goPart("papan", func(ctx context.Context) error {
		defer db.Close()
		return papan.New(cfg, db, logger).Serve(ctx, l)
	})
	return nil
}
