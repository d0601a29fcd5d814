// Command ikd-counter is a service counter's side of the pipeline: it runs
// the office agent that takes events from the counter applications, publishes
// a file of input lines to the broker, or simulates the counters of all
// Indonesia.
//
//	ikd-counter serve
//	ikd-counter publish [--spool DIR] [FILE|-]
//	ikd-counter simulate --rate N [--duration D] [--seed S]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/cmdline"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/producers/agent"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// Config is read from IKD_* variables.
type Config struct {
	NatsURL string      `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222"`
	NATS    broker.Auth `envconfig:"NATS"`
	// PseudonymKey is required, 32 random bytes or more as hex or base64,
	// unless Development: see nik.ConfiguredKey.
	PseudonymKey string `envconfig:"PSEUDONYM_KEY" secret:"true"`
	// Development marks a development run (against ikd-dev), which may use
	// the public development key.
	Development     bool          `envconfig:"DEVELOPMENT"`
	FutureTolerance time.Duration `envconfig:"FUTURE_TOLERANCE" default:"10m"`
	// Streams must match the other programs', since each provisions them.
	Streams broker.StreamOptions `envconfig:"STREAM"`
	// The office agent's settings; publish uses the spool's too.
	agent.Config
}

// Validate refuses values that would break ikd-counter.
func (c *Config) Validate() error {
	return errors.Join(
		config.URLs("NatsURL", c.NatsURL, config.NatsSchemes...),
		config.NotNegative("FutureTolerance", c.FutureTolerance),
	)
}

// Exit statuses.
const (
	exitOK       = 0
	exitRejected = 1 // publish: some lines were rejected; simulate: it failed
	exitUsage    = 2 // bad usage, or the broker cannot be reached or refused events
	exitWaiting  = 3 // publish --spool: the events are safe in the spool, not yet forwarded
)

const usage = `usage: ikd-counter COMMAND [FLAGS]

A service counter's side of the pipeline. Configured by IKD_* variables
(README, Configuration).

commands:
  serve                 run the office agent: take counters' events over local
                        HTTP into a spool, forward them to the broker
  publish [--spool DIR] [FILE|-]
                        publish JSON Lines from FILE, or from stdin; with a
                        spool, through it, kept there while the link is down
  simulate --rate N [--duration D] [--seed S]
                        publish simulated counters' events
  help                  this text; COMMAND --help for a command's
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program but for the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serveCommand(ctx, args[1:], stdout, stderr)
	case "publish":
		return publishCommand(ctx, args[1:], stdin, stdout, stderr)
	case "simulate":
		return simulateCommand(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		if strings.HasPrefix(args[0], "-") {
			// ikd-counter itself has no flags.
			code, _ := cmdline.Command{Usage: usage}.Parse(args, stdout, stderr)
			return code
		}
		fmt.Fprintf(stderr, "ikd-counter: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
}

// counter is what publish and simulate work with.
type counter struct {
	nc        *nats.Conn
	builder   *events.Builder
	office    *intake.Office
	publisher *publish.Publisher
}

// loadConfig loads and prints the configuration and returns it with the
// pseudonym key.
func loadConfig(logger *slog.Logger) (Config, []byte, error) {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return Config{}, nil, err
	}
	config.Log(logger, "ikd-counter", &cfg)
	key, public, err := nik.ConfiguredKey(cfg.PseudonymKey, cfg.Development)
	if err != nil {
		return Config{}, nil, fmt.Errorf("IKD_PSEUDONYM_KEY: %w (only a development run, IKD_DEVELOPMENT=1, may go without a secret key)", err)
	}
	if public {
		logger.Warn("development run: the public development key pseudonymises; its pseudonyms protect nobody")
	}
	// The id, never the key: operators check a rotation by it.
	logger.Info("pseudonym key", "key_id", nik.KeyID(key))
	return cfg, key, nil
}

// dial is the one place that connects to the broker, with the office's
// credentials from the configuration.
func dial(cfg Config, logger *slog.Logger) (*nats.Conn, error) {
	return broker.Connect(cfg.NatsURL, "ikd-counter", cfg.NATS, logger)
}

// connect loads the configuration, connects to the broker and provisions the
// streams, so that the first event has somewhere to go.
func connect(ctx context.Context, logger *slog.Logger) (*counter, error) {
	cfg, key, err := loadConfig(logger)
	if err != nil {
		return nil, err
	}
	builder, err := newBuilder(cfg, key)
	if err != nil {
		return nil, err
	}
	nc, err := dial(cfg, logger)
	if err != nil {
		return nil, err
	}
	publisher, err := newPublisher(ctx, nc, cfg.Streams, logger)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &counter{nc: nc, builder: builder, office: &intake.Office{Builder: builder}, publisher: publisher}, nil
}

func newBuilder(cfg Config, key []byte) (*events.Builder, error) {
	ref, err := region.Load()
	if err != nil {
		return nil, fmt.Errorf("reference regions: %w", err)
	}
	pseudonyms, err := nik.NewPseudonymizer(key)
	if err != nil {
		return nil, fmt.Errorf("IKD_PSEUDONYM_KEY: %w", err)
	}
	return &events.Builder{Ref: ref, Pseudonyms: pseudonyms, Now: time.Now, FutureTolerance: cfg.FutureTolerance}, nil
}

// newPublisher provisions the streams and returns a Publisher on nc.
func newPublisher(ctx context.Context, nc *nats.Conn, streams broker.StreamOptions, logger *slog.Logger) (*publish.Publisher, error) {
	if err := provision(ctx, nc, streams); err != nil {
		return nil, err
	}
	return publish.New(nc, publish.Options{}, logger)
}

// provision declares the streams, so that the first event has somewhere to go.
func provision(ctx context.Context, nc *nats.Conn, streams broker.StreamOptions) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return broker.Provision(ctx, js, broker.Streams(streams)...)
}

func (c *counter) close() { c.nc.Close() }
