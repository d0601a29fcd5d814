package aggregator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// Setup readies both ends (endpoints.Ready) and returns an aggregator that
// validates against the reference regions and writes to conn.
func Setup(ctx context.Context, cfg Config, js jetstream.JetStream, conn driver.Conn, streams broker.StreamOptions, logger *slog.Logger) (*Aggregator, error) {
	if err := endpoints.Ready(ctx, js, conn, streams, logger); err != nil {
		return nil, err
	}
	ref, err := region.Load()
	if err != nil {
		return nil, fmt.Errorf("reference regions: %w", err)
	}
	validator := &events.Validator{Ref: ref, Now: time.Now, FutureTolerance: cfg.FutureTolerance}
	return New(ctx, cfg, js, WarehouseWriter{warehouse.NewEventWriter(conn)}, validator, logger)
}

// WarehouseWriter is the warehouse's event writer as the aggregator's
// Writer: the one place where its errors are given their class.
type WarehouseWriter struct {
	W *warehouse.EventWriter
}

// Write stores records and classifies what fails.
func (w WarehouseWriter) Write(ctx context.Context, records []Record) error {
	rows := make([]warehouse.Record, len(records))
	for i, r := range records {
		rows[i] = warehouse.Record{Event: r.Event, Seq: r.Seq}
	}
	err := w.W.Write(ctx, rows)
	switch warehouse.Classify(err) {
	case warehouse.NoFault:
		return nil
	case warehouse.Passing:
		return &WriteError{Class: ClassTransient, Err: err}
	case warehouse.Setup:
		return &WriteError{Class: ClassSetup, Err: err}
	}
	return &WriteError{Class: ClassRefused, Err: err}
}
