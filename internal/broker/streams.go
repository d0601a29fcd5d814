package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/contract"
)

// The project's streams and their subjects, as the contract names them.
const (
	EventsStream     = contract.EventsStream
	DeadLetterStream = contract.DeadLetterStream
	ChangesStream    = contract.ChangesStream
	AlertsStream     = contract.AlertsStream
)

const (
	EventsPrefix     = contract.EventsPrefix
	DeadLetterPrefix = contract.DeadLetterPrefix
	ChangesPrefix    = contract.ChangesPrefix
	AlertsPrefix     = contract.AlertsPrefix

	eventsSubjects     = EventsPrefix + ".>"
	deadLetterSubjects = DeadLetterPrefix + ".>"
	changesSubjects    = ChangesPrefix + ".>"
	alertsSubjects     = AlertsPrefix + ".>"
)

const (
	defaultDuplicateWindow = 10 * time.Minute
	defaultReplicas        = 1

	// eventMaxMsgSize is far above a real event (a few hundred bytes) so
	// headers and new fields fit, yet rejects runaway payloads at the broker.
	eventMaxMsgSize = 8 * 1024
	// changesMaxAge is enough for a consumer that was down overnight to catch
	// up; ClickHouse, not this stream, is the record of what changed.
	changesMaxAge = 24 * time.Hour
)

// StreamOptions tunes the streams for the deployment; zero values take defaults.
type StreamOptions struct {
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"10m"`
	Replicas        int           `envconfig:"REPLICAS" default:"1"`
}

// Streams returns the configuration of every stream the project uses.
func Streams(opt StreamOptions) []jetstream.StreamConfig {
	if opt.DuplicateWindow <= 0 {
		opt.DuplicateWindow = defaultDuplicateWindow
	}
	if opt.Replicas <= 0 {
		opt.Replicas = defaultReplicas
	}
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "Events published by service counters, aggregated into ClickHouse.",
			Subjects:    []string{eventsSubjects},
			// Events must survive a broker restart.
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
			// Counters retry publishes with a Nats-Msg-Id; the window must outlast their retries.
			Duplicates: opt.DuplicateWindow,
			MaxMsgSize: eventMaxMsgSize,
			// Should an operator set a limit, a full stream refuses new
			// events, which counters keep and retry, rather than drop old
			// ones that may not be aggregated yet.
			Discard:  jetstream.DiscardNew,
			Replicas: opt.Replicas,
		},
		{
			Name:        DeadLetterStream,
			Description: "Events a consumer gave up on, kept for a human to inspect and replay.",
			Subjects:    []string{deadLetterSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			// No MaxAge: a dead letter is only gone once someone has dealt
			// with it. A full stream refuses new ones; the aggregator then
			// keeps the message instead of terminating it.
			Discard:  jetstream.DiscardNew,
			Replicas: opt.Replicas,
		},
		{
			Name:        ChangesStream,
			Description: "Announcements of changes the aggregator committed to ClickHouse.",
			Subjects:    []string{changesSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      changesMaxAge,
			Discard:     jetstream.DiscardOld,
			Replicas:    opt.Replicas,
		},
		{
			Name:        AlertsStream,
			Description: "Alerts raised by the pipeline.",
			Subjects:    []string{alertsSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			// Alerter replicas publish each transition under one id; the
			// window must outlast a replica's evaluation interval.
			Duplicates: opt.DuplicateWindow,
			// No MaxAge: alerts are a history people look back through.
			Discard:  jetstream.DiscardOld,
			Replicas: opt.Replicas,
		},
	}
}

// Provision creates each stream or updates it to match cfg, so running it at
// every program start is safe.
func Provision(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Validate refuses options JetStream would refuse later, at provisioning;
// zero values take the defaults.
func (o StreamOptions) Validate() error {
	var errs []error
	if o.DuplicateWindow < 0 {
		errs = append(errs, config.Invalid("DuplicateWindow", "must not be negative, got %s", o.DuplicateWindow))
	}
	if o.Replicas < 0 || o.Replicas > 5 {
		errs = append(errs, config.Invalid("Replicas", "must be between 1 and 5 (0: the default), got %d", o.Replicas))
	}
	return errors.Join(errs...)
}
