// Package endpoints opens the two ends every pipeline program talks to, the
// broker and the warehouse, and readies them: the project's streams exist
// with their current configuration, and the warehouse schema is applied.
package endpoints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
	"github.com/ikd-pipeline/ikd/schema"
)

// Config names the two ends; the defaults reach what ikd-dev hosts.
type Config struct {
	NatsURL       string      `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222"`
	NATS          broker.Auth `envconfig:"NATS"`
	ClickHouseDSN string      `envconfig:"CLICKHOUSE_DSN" default:"http://127.0.0.1:8123" secret:"dsn"`
	// ClickHouseCluster names the ClickHouse cluster the schema is applied
	// on (ON CLUSTER, Replicated engines, Distributed tables); empty for one
	// server.
	ClickHouseCluster string               `envconfig:"CLICKHOUSE_CLUSTER"`
	Streams           broker.StreamOptions `envconfig:"STREAM"`
}

// Endpoints are open connections to the broker and the warehouse.
type Endpoints struct {
	NC *nats.Conn
	JS jetstream.JetStream
	DB driver.Conn
}

// Dial connects to both ends as program. The consumers' Setup functions
// ready them.
func Dial(ctx context.Context, cfg Config, program string, logger *slog.Logger) (*Endpoints, error) {
	if err := cfg.Streams.Validate(); err != nil {
		return nil, err
	}
	nc, err := broker.Connect(cfg.NatsURL, program, cfg.NATS, logger)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	db, err := warehouse.Open(ctx, cfg.ClickHouseDSN, logger)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Endpoints{NC: nc, JS: js, DB: db}, nil
}

// Ready provisions the streams and the lease bucket and applies the schema, on the ClickHouse
// cluster named cluster ("" for one server). Both are idempotent, so every
// consumer does it at start and none depends on another having run.
func Ready(ctx context.Context, js jetstream.JetStream, db driver.Conn, streams broker.StreamOptions, cluster string, logger *slog.Logger) error {
	if err := broker.Provision(ctx, js, broker.Streams(streams)...); err != nil {
		return err
	}
	if err := broker.ProvisionLeases(ctx, js, broker.LeaseBucketConfig(streams)); err != nil {
		return err
	}
	ref, err := region.Load()
	if err != nil {
		return fmt.Errorf("reference regions: %w", err)
	}
	return warehouse.MigrateCluster(ctx, db, schema.Migrations, cluster, ref, logger)
}

// Close drains the broker connection, so that acknowledgements under way
// are sent, and closes the warehouse connection.
func (e *Endpoints) Close() {
	_ = e.NC.Drain()
	_ = e.DB.Close()
}

// Validate refuses addresses no client could use.
func (c Config) Validate() error {
	return errors.Join(
		config.URLs("NatsURL", c.NatsURL, config.NatsSchemes...),
		ValidateDSN("ClickHouseDSN", c.ClickHouseDSN),
		validateCluster(c.ClickHouseCluster),
	)
}

// ValidateDSN refuses a DSN that clickhouse-go cannot parse.
func ValidateDSN(field, dsn string) error {
	if err := config.URL(field, dsn, "clickhouse", "http", "https"); err != nil {
		return err
	}
	if _, err := clickhouse.ParseDSN(dsn); err != nil {
		return config.Invalid(field, "not a ClickHouse DSN (clickhouse://host:9000 or http://host:8123): %s", config.RedactDSN(err.Error()))
	}
	return nil
}

// validateCluster refuses a cluster name ON CLUSTER cannot take as written.
func validateCluster(name string) error {
	if name == "" {
		return nil
	}
	if err := warehouse.ValidClusterName(name); err != nil {
		return config.Invalid("ClickHouseCluster", "%v", err)
	}
	return nil
}
