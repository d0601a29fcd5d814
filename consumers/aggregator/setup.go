package aggregator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/schema"
)

// Setup readies both ends for an aggregator: the streams exist with their
// current configuration and the warehouse schema is applied.
func Setup(ctx context.Context, cfg Config, js jetstream.JetStream, conn driver.Conn, streams broker.StreamOptions, logger *slog.Logger) (*Aggregator, error) {
	if err := broker.Provision(ctx, js, broker.Streams(streams)...); err != nil {
		return nil, err
	}
	ref, err := region.Load()
	if err != nil {
		return nil, fmt.Errorf("reference regions: %w", err)
	}
	if err := warehouse.Migrate(ctx, conn, schema.Migrations, ref, logger); err != nil {
		return nil, err
	}
	validator := &events.Validator{Ref: ref, Now: time.Now, FutureTolerance: cfg.FutureTolerance}
	return New(ctx, cfg, js, warehouse.NewEventWriter(conn), validator, logger)
}
