package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/contract"
)

// The project's streams and their subjects, as the contract names them;
// created or updated by a program connected as the admin role (ikd-dev,
// `ikd-aggregator provision`), never by hand.
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
	// deadLetterMaxMsgSize fits an event at its largest plus the headers a
	// dead letter carries.
	deadLetterMaxMsgSize = 16 * 1024

	mib = 1 << 20
	gib = 1 << 30
	// Defaults of the stream limits: a flood meets a refusal, which the
	// publisher sees and logs, well before it fills a disk. JetStream
	// reserves them on disk, so together they must fit in 3/4 of the free
	// space; a national year of events needs IKD_STREAM_EVENTS_MAX_BYTES
	// raised (about 400 bytes an event).
	defaultEventsMaxBytes     = 8 * gib
	defaultDeadLetterMaxBytes = 1 * gib
	defaultDeadLetterMaxAge   = 30 * 24 * time.Hour
	defaultChangesMaxBytes    = 256 * mib
	defaultAlertsMaxBytes     = 256 * mib
)

// StreamOptions tunes the streams for the deployment; zero values take defaults.
type StreamOptions struct {
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"10m"`
	Replicas        int           `envconfig:"REPLICAS" default:"1"`
	// EventsMaxBytes bounds IKD_EVENTS; when full it refuses new events
	// (counters keep and retry them) rather than drop unaggregated ones.
	EventsMaxBytes int64 `envconfig:"EVENTS_MAX_BYTES" default:"8589934592"`
	// DeadLetterMaxAge is how long a dead letter waits for a person; it may
	// hold a raw line a counter sent by mistake, so it is not kept forever.
	DeadLetterMaxAge   time.Duration `envconfig:"DEADLETTER_MAX_AGE" default:"720h"`
	DeadLetterMaxBytes int64         `envconfig:"DEADLETTER_MAX_BYTES" default:"1073741824"`
	ChangesMaxBytes    int64         `envconfig:"CHANGES_MAX_BYTES" default:"268435456"`
	AlertsMaxBytes     int64         `envconfig:"ALERTS_MAX_BYTES" default:"268435456"`
}

// Validate refuses options JetStream would refuse later, at provisioning;
// zero values take the defaults.
func (o StreamOptions) Validate() error {
	var errs []error
	for _, d := range []struct {
		field string
		value time.Duration
	}{{"DuplicateWindow", o.DuplicateWindow}, {"DeadLetterMaxAge", o.DeadLetterMaxAge}} {
		if d.value < 0 {
			errs = append(errs, config.Invalid(d.field, "must not be negative, got %s", d.value))
		}
	}
	for _, b := range []struct {
		field string
		value int64
	}{{"EventsMaxBytes", o.EventsMaxBytes}, {"DeadLetterMaxBytes", o.DeadLetterMaxBytes}, {"ChangesMaxBytes", o.ChangesMaxBytes}, {"AlertsMaxBytes", o.AlertsMaxBytes}} {
		if b.value < 0 {
			errs = append(errs, config.Invalid(b.field, "must not be negative (0: the default), got %d", b.value))
		}
	}
	if o.Replicas < 0 || o.Replicas > 5 {
		errs = append(errs, config.Invalid("Replicas", "must be between 1 and 5 (0: the default), got %d", o.Replicas))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero values, for callers that build StreamOptions
// in code rather than from the environment.
func (o StreamOptions) withDefaults() StreamOptions {
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = defaultDuplicateWindow
	}
	if o.Replicas <= 0 {
		o.Replicas = defaultReplicas
	}
	fill := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&o.EventsMaxBytes, defaultEventsMaxBytes)
	fill(&o.DeadLetterMaxBytes, defaultDeadLetterMaxBytes)
	fill(&o.ChangesMaxBytes, defaultChangesMaxBytes)
	fill(&o.AlertsMaxBytes, defaultAlertsMaxBytes)
	if o.DeadLetterMaxAge <= 0 {
		o.DeadLetterMaxAge = defaultDeadLetterMaxAge
	}
	return o
}

// Streams returns the configuration of every stream the project uses.
func Streams(opt StreamOptions) []jetstream.StreamConfig {
	opt = opt.withDefaults()
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
			MaxBytes:   opt.EventsMaxBytes,
			// A full stream refuses new events, which counters keep and
			// retry, rather than drop old ones that may not be aggregated yet.
			Discard:  jetstream.DiscardNew,
			Replicas: opt.Replicas,
			// Publishers send atomic batches, which a broker syncing every
			// write stores with one fsync (producers/publish/batch.go).
			AllowAtomicPublish: true,
		},
		{
			Name:        DeadLetterStream,
			Description: "Events a consumer gave up on, kept for a human to inspect and replay.",
			Subjects:    []string{deadLetterSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			// A dead letter may hold personal data a counter sent by
			// mistake, so it expires; MaxAge leaves a month to deal with it.
			MaxAge:     opt.DeadLetterMaxAge,
			MaxBytes:   opt.DeadLetterMaxBytes,
			MaxMsgSize: deadLetterMaxMsgSize,
			// A full stream refuses new ones; the aggregator then keeps the
			// message instead of terminating it.
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
			MaxBytes:    opt.ChangesMaxBytes,
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
			// No MaxAge: alerts are a history people look back through;
			// MaxBytes keeps the newest when a flood of them comes.
			MaxBytes: opt.AlertsMaxBytes,
			Discard:  jetstream.DiscardOld,
			Replicas: opt.Replicas,
		},
	}
}

// Provision makes each stream exist with cfg. A stream that already matches
// is left alone, so a program whose role may only look streams up (every
// role but the admin) starts once the admin has provisioned them; one that is
// missing or differs is created or updated, which only the admin may do.
func Provision(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		stream, err := js.Stream(ctx, cfg.Name)
		switch {
		case err == nil && SameLimits(stream.CachedInfo().Config, cfg):
			continue
		case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w%s", cfg.Name, err, provisionHint(err))
		}
	}
	return nil
}

// SameLimits reports whether the stream the server has (got) is configured
// as want, ignoring the defaults the server fills in.
func SameLimits(got, want jetstream.StreamConfig) bool {
	limit := func(v int64) int64 {
		if v <= 0 {
			return -1
		}
		return v
	}
	return slices.Equal(got.Subjects, want.Subjects) &&
		got.Storage == want.Storage && got.Retention == want.Retention && got.Discard == want.Discard &&
		got.Replicas == want.Replicas && got.MaxAge == want.MaxAge &&
		limit(got.MaxBytes) == limit(want.MaxBytes) && limit(got.MaxMsgs) == limit(want.MaxMsgs) &&
		limit(int64(got.MaxMsgSize)) == limit(int64(want.MaxMsgSize)) &&
		(want.Duplicates == 0 || got.Duplicates == want.Duplicates)
}

// insufficientResources is JetStream's error code for a stream whose limits
// do not fit in what the server may store.
const insufficientResources jetstream.ErrorCode = 10047

// provisionHint says what a person can do about a failed provisioning.
func provisionHint(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == insufficientResources:
		return "; JetStream reserves each stream's IKD_STREAM_*_MAX_BYTES on disk and they do not fit in 3/4 of the free space: free some or lower them"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoStreamResponse):
		// A request the broker's permissions refuse gets no answer.
		return "; the stream is missing or differs from this program's IKD_STREAM_* settings, and only the broker's admin role " +
			"may create or change streams: run `ikd-aggregator provision` with the admin's credentials (ikd-dev does it at start), " +
			"or give this program the same IKD_STREAM_* settings as the admin's"
	}
	return ""
}
