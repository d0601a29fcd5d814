// Command ikd-dev runs the whole pipeline on one machine with embedded
// servers: the NATS JetStream broker, the ClickHouse engine behind
// ClickHouse's HTTP interface, the aggregator and, unless told otherwise, a
// simulator of service counters. It prints a live attainment table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/consumers/papan"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/observe"
	"github.com/ikd-pipeline/ikd/internal/private"
	"github.com/ikd-pipeline/ikd/producers/demoyear"
)

// Config is ikd-dev's configuration. An unset broker or warehouse address
// means: host the embedded one.
type Config struct {
	DataDir    string `envconfig:"DATA_DIR" default:"./var"`
	NatsURL    string `envconfig:"NATS_URL"`
	NatsListen string `envconfig:"NATS_LISTEN" default:"127.0.0.1:4222"`
	// NatsMonitorListen is where the embedded broker serves nats-server's
	// monitoring endpoint (/varz, /jsz, /healthz); empty turns it off.
	NatsMonitorListen string `envconfig:"NATS_MONITOR_LISTEN" default:"127.0.0.1:8222"`
	// NATS are the credentials for a broker given by IKD_NATS_URL; the
	// embedded broker has its own, one user per role.
	NATS             broker.Auth `envconfig:"NATS"`
	ClickHouseDSN    string      `envconfig:"CLICKHOUSE_DSN" secret:"dsn"`
	ClickHouseListen string      `envconfig:"CLICKHOUSE_LISTEN" default:"127.0.0.1:8123"`
	// ClickHouseUser and ClickHousePassword protect the embedded HTTP
	// interface; unset, it answers anyone on loopback.
	ClickHouseUser     string `envconfig:"CLICKHOUSE_USER"`
	ClickHousePassword string `envconfig:"CLICKHOUSE_PASSWORD" secret:"true"`
	// The analyst login may only read, whatever it asks.
	ClickHouseAnalystUser     string `envconfig:"CLICKHOUSE_ANALYST_USER"`
	ClickHouseAnalystPassword string `envconfig:"CLICKHOUSE_ANALYST_PASSWORD" secret:"true"`
	// Limits of the embedded HTTP interface.
	ClickHouseMaxBody          int64         `envconfig:"CLICKHOUSE_MAX_BODY" default:"1073741824"`
	ClickHouseMaxDecompressed  int64         `envconfig:"CLICKHOUSE_MAX_DECOMPRESSED" default:"4294967296"`
	ClickHouseReadTimeout      time.Duration `envconfig:"CLICKHOUSE_READ_TIMEOUT" default:"5m"`
	ClickHouseMaxExecutionTime time.Duration `envconfig:"CLICKHOUSE_MAX_EXECUTION_TIME" default:"60s"`
	// ClickHouseReadMaxThreads is the readers' max_threads: 0 half the cores, -1 no cap.
	ClickHouseReadMaxThreads int `envconfig:"CLICKHOUSE_READ_MAX_THREADS" default:"0"`
	// ClickHouseReadNice is the readers' os_thread_priority: 0 the front's 10, -1 none.
	ClickHouseReadNice int    `envconfig:"CLICKHOUSE_READ_NICE" default:"0"`
	ChdbLib            string `envconfig:"CHDB_LIB"`
	// PseudonymKey unset: ikd-dev makes a random key in DataDir once and
	// keeps it (see nik.DevelopmentKeyFile).
	PseudonymKey string               `envconfig:"PSEUDONYM_KEY" secret:"true"`
	Streams      broker.StreamOptions `envconfig:"STREAM"`
	Aggregator   aggregator.Config    `envconfig:"AGGREGATOR"`
	Alerter      alerter.Config       `envconfig:"ALERTER"`
	Papan        papan.Config         `envconfig:"PAPAN"`
	Demo         demoyear.Config      `envconfig:"DEMO"`
	// MetricsListen serves /metrics, /healthz and /readyz of the aggregator
	// and alerter this process runs (README, Operating).
	MetricsListen string `envconfig:"METRICS_LISTEN" default:"127.0.0.1:9410"`
}

const usage = `usage: ikd-dev [--simulate-rate N] [--table-every D]

Runs the whole pipeline on this machine: embedded NATS JetStream and
ClickHouse engine (unless IKD_NATS_URL / IKD_CLICKHOUSE_DSN name others), the
aggregator, the alerter, the attainment board (IKD_PAPAN_LISTEN) and a simulator
of service counters (with a demo year seeded), and prints a live
attainment table. Data stays in IKD_DATA_DIR (./var). Ctrl-C stops it.
`

// Validate refuses values that would break ikd-dev; an unset address means
// the embedded server, so only a set one is checked.
func (c *Config) Validate() error {
	errs := []error{
		config.NotEmpty("DataDir", c.DataDir),
		listenAddress("NatsListen", c.NatsListen),
		listenAddress("ClickHouseListen", c.ClickHouseListen),
		observe.ValidateListen("MetricsListen", c.MetricsListen),
	}
	if c.NatsURL != "" {
		errs = append(errs, config.URLs("NatsURL", c.NatsURL, config.NatsSchemes...))
	}
	if c.ClickHouseDSN != "" {
		errs = append(errs, endpoints.ValidateDSN("ClickHouseDSN", c.ClickHouseDSN))
	}
	if c.ClickHousePassword != "" && c.ClickHouseUser == "" {
		errs = append(errs, config.Invalid("ClickHouseUser", "must be set with IKD_CLICKHOUSE_PASSWORD"))
	}
	if c.ClickHouseAnalystPassword != "" && c.ClickHouseAnalystUser == "" {
		errs = append(errs, config.Invalid("ClickHouseAnalystUser", "must be set with IKD_CLICKHOUSE_ANALYST_PASSWORD"))
	}
	if c.ClickHouseAnalystUser != "" && c.ClickHouseAnalystUser == c.ClickHouseUser {
		errs = append(errs, config.Invalid("ClickHouseAnalystUser", "must differ from IKD_CLICKHOUSE_USER"))
	}
	if c.ClickHouseMaxBody <= 0 {
		errs = append(errs, config.Invalid("ClickHouseMaxBody", "must be positive, got %d", c.ClickHouseMaxBody))
	}
	if c.ClickHouseMaxDecompressed <= 0 {
		errs = append(errs, config.Invalid("ClickHouseMaxDecompressed", "must be positive, got %d", c.ClickHouseMaxDecompressed))
	}
	if c.ClickHouseReadTimeout <= 0 {
		errs = append(errs, config.Invalid("ClickHouseReadTimeout", "must be positive, got %s", c.ClickHouseReadTimeout))
	}
	if c.ClickHouseReadMaxThreads < -1 || c.ClickHouseReadMaxThreads > maxReadThreads {
		errs = append(errs, config.Invalid("ClickHouseReadMaxThreads", "must be -1 (no cap), 0 (half the cores) or up to %d, got %d", maxReadThreads, c.ClickHouseReadMaxThreads))
	}
	if c.ClickHouseReadNice < -1 || c.ClickHouseReadNice > 19 {
		errs = append(errs, config.Invalid("ClickHouseReadNice", "must be -1 (none), 0 (the default, 10) or a nice value up to 19, got %d", c.ClickHouseReadNice))
	}
	return errors.Join(errs...)
}

// maxReadThreads bounds IKD_CLICKHOUSE_READ_MAX_THREADS: more is a typo, not a cap.
const maxReadThreads = 1024

func listenAddress(field, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return config.Invalid(field, "must be host:port, got %q", addr)
	}
	return nil
}

func main() {
	// Everything this process writes, the engine's and the broker's files
	// too, is the user's alone.
	private.Umask()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	flags := flag.NewFlagSet("ikd-dev", flag.ContinueOnError)
	rate := flags.Float64("simulate-rate", 200, "simulated events per second from counters across Indonesia; 0 turns the simulator off")
	every := flags.Duration("table-every", 5*time.Second, "how often to print the attainment table; 0 turns it off")
	if code, done := (cmdline.Command{Usage: usage, Flags: flags}).Parse(os.Args[1:], os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ikd-dev:", err)
		os.Exit(2)
	}
	config.Log(logger, "ikd-dev", &cfg)
	if code := cmdline.Stopped(ctx, logger, "ikd-dev", run(ctx, cfg, *rate, *every, logger)); code != cmdline.ExitOK {
		os.Exit(code)
	}
}
