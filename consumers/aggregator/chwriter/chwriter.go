// Package chwriter ties the aggregator to ClickHouse: the warehouse's event
// writer as the aggregator's Writer, its errors given their class, and Setup,
// which readies both ends. It lives apart so that the aggregator itself links
// no ClickHouse client; the programs that run it wire this in.
package chwriter

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// Setup readies both ends (endpoints.Ready) and returns an aggregator that
// validates against the reference regions and writes to conn.
func Setup(ctx context.Context, cfg aggregator.Config, js jetstream.JetStream, conn driver.Conn, streams broker.StreamOptions, cluster string, logger *slog.Logger) (*aggregator.Aggregator, error) {
	if err := endpoints.Ready(ctx, js, conn, streams, cluster, logger); err != nil {
		return nil, err
	}
	ref, err := region.Load()
	if err != nil {
		return nil, fmt.Errorf("reference regions: %w", err)
	}
	validator := &events.Validator{Ref: ref, Now: time.Now, FutureTolerance: cfg.FutureTolerance}
	w := warehouse.NewFilteredEventWriter(conn, warehouse.FilterConfig{Bytes: cfg.LedgerFilterMiB << 20, Logger: logger})
	return aggregator.New(ctx, cfg, js, Writer{w}, validator, logger)
}

// Writer is the warehouse's event writer as the aggregator's Writer: the one
// place where its errors are given their class.
type Writer struct {
	W *warehouse.EventWriter
}

// Write stores records and classifies what fails.
func (w Writer) Write(ctx context.Context, records []aggregator.Record) error {
	rows := make([]warehouse.Record, len(records))
	for i, r := range records {
		rows[i] = warehouse.Record{Event: r.Event, Seq: r.Seq}
	}
	err := w.W.Write(ctx, rows)
	if class, failed := classOf(warehouse.Classify(err)); failed {
		return &aggregator.WriteError{Class: class, Err: err}
	}
	return nil
}

// Begin starts the writer's filter of the ledger anew: this aggregator has
// just become the only writer.
func (w Writer) Begin(ctx context.Context) { w.W.Begin(ctx) }

// classOf is the aggregator's class for what the warehouse blames; failed is
// false for NoFault. A fault it does not know is taken as the rows' own.
func classOf(f warehouse.Fault) (class aggregator.Class, failed bool) {
	switch f {
	case warehouse.NoFault:
		return 0, false
	case warehouse.Passing:
		return aggregator.ClassTransient, true
	case warehouse.Setup:
		return aggregator.ClassSetup, true
	}
	return aggregator.ClassRefused, true
}
