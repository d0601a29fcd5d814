// Package aggregator is the consumer that turns the event stream into
// warehouse rows: fetch → batch → validate → write → acknowledge. It
// acknowledges a message only after the warehouse accepted its batch, sends
// what can never be written to the dead-letter stream with the reason, and
// relies on the warehouse's set-based aggregates for exactly-once counts.
// One aggregator writes at a time: the holder of the aggregator lease
// (internal/lease); the others stand by and take over when it is gone.
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/batch"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/lease"
	"github.com/ikd-pipeline/ikd/internal/logsample"
	"github.com/ikd-pipeline/ikd/internal/nik"
)

// Config tunes the consumer; the defaults suit one aggregator on a laptop.
type Config struct {
	Durable       string        `envconfig:"DURABLE" default:"ikd-aggregator"`
	BatchSize     int           `envconfig:"BATCH_SIZE" default:"5000"`
	FlushInterval time.Duration `envconfig:"FLUSH_INTERVAL" default:"200ms"`
	AckWait       time.Duration `envconfig:"ACK_WAIT" default:"30s"`
	// MaxDeliver bounds how often the warehouse may refuse an event before it
	// is dead-lettered with the warehouse's reason. Refusals are counted by
	// each aggregator process, not by the broker's delivery count, which also
	// grows while events merely wait out an outage.
	MaxDeliver int `envconfig:"MAX_DELIVER" default:"10"`
	// RefusedDelay is the first delay before a refused event comes back; it
	// doubles with each refusal, up to five minutes.
	RefusedDelay time.Duration `envconfig:"REFUSED_DELAY" default:"1s"`
	// RetryMaxInterval caps the backoff while the warehouse is down, so that
	// work resumes within that time after it returns.
	RetryMaxInterval time.Duration `envconfig:"RETRY_MAX_INTERVAL" default:"2s"`
	FutureTolerance  time.Duration `envconfig:"FUTURE_TOLERANCE" default:"10m"`
	// LeaseTTL is how long the single writer's lease outlives its holder's
	// last renewal: a standby takes over that long after the holder died.
	LeaseTTL time.Duration `envconfig:"LEASE_TTL" default:"10s"`
	// LedgerFilterMiB sizes the filter by which the writer skips looking up
	// residents the first-seen ledger cannot hold (README, "The ledger's
	// filter"): 64 holds a nation's year at about 1 % looked up needlessly;
	// 0 looks every resident up.
	LedgerFilterMiB int `envconfig:"LEDGER_FILTER_MIB" default:"64"`
}

// Writer stores accepted events. Its errors say what they blame by being a
// *WriteError with a Class; one that does not is taken as a refusal of the
// rows. Setup adapts the warehouse's event writer.
type Writer interface {
	Write(ctx context.Context, records []Record) error
}

// A Beginner is a Writer that keeps what it learned of the warehouse from
// one write to the next, which holds only while no one else writes: Begin is
// called each time this aggregator takes the lease, before its first write,
// with a context that ends when the lease is lost.
type Beginner interface {
	Begin(ctx context.Context)
}

// Record is an accepted event and its position in the source stream, kept
// so that the warehouse can be reconciled with the broker.
type Record struct {
	events.Event
	Seq uint64
}

// Stats are running totals since start, for dashboards and tests.
type Stats struct {
	Received atomic.Uint64 // messages fetched, redeliveries included
	Written  atomic.Uint64 // events the warehouse accepted on their first delivery
	// Rewritten counts redelivered events the warehouse accepted: they may
	// have been written before (the warehouse absorbs the repeat), so they
	// are not counted as newly written.
	Rewritten    atomic.Uint64
	DeadLettered atomic.Uint64
	Refused      atomic.Uint64 // events the warehouse refused and that were sent back for later
	Retries      atomic.Uint64 // write attempts that failed and were retried
}

// Aggregator consumes IKD_EVENTS through one durable pull consumer while it
// holds the aggregator lease; several may run, one writes at a time.
type Aggregator struct {
	cfg      Config
	js       jetstream.JetStream
	consumer jetstream.Consumer
	lease    *lease.Lease
	// held is the lease while this aggregator holds it: every write ends
	// by its deadline.
	held      atomic.Pointer[lease.Held]
	writer    Writer
	validator *events.Validator
	logger    *slog.Logger
	Stats     Stats

	// refusals counts, by stream sequence, how often the warehouse refused an
	// event; only the writing goroutine touches it.
	refusals map[uint64]int
	// deadLetterFailures and announceFailures count what the broker did not
	// store, so that a broker outage logs a sample, not every message.
	deadLetterFailures atomic.Uint64
	announceFailures   atomic.Uint64
	metrics            *metrics
}

// New creates or updates the durable consumer and returns an aggregator
// ready to Run.
func New(ctx context.Context, cfg Config, js jetstream.JetStream, writer Writer, validator *events.Validator, logger *slog.Logger) (*Aggregator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aggregator configuration: %w", err)
	}
	// A broker electing a leader answers late: the set-up waits for it.
	var consumer jetstream.Consumer
	err := broker.Request(ctx, "create consumer", logger, func(ctx context.Context) (err error) {
		consumer, err = js.CreateOrUpdateConsumer(ctx, contract.EventsStream, consumerConfig(cfg))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, contract.EventsStream, err)
	}
	var l *lease.Lease
	err = broker.Request(ctx, "open the lease", logger, func(ctx context.Context) (err error) {
		l, err = lease.Open(ctx, js, broker.LeaseBucket, broker.AggregatorLease, holderName(), lease.For(cfg.LeaseTTL))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Aggregator{cfg: cfg, js: js, consumer: consumer, lease: l, writer: writer, validator: validator, logger: logger,
		refusals: make(map[uint64]int), metrics: newMetrics()}, nil
}

// consumerConfig is the durable consumer the aggregator reads through.
func consumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "aggregates events into the warehouse",
		FilterSubject: events.SubjectPrefix + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		// Unlimited on the server: messages prefetched behind a batch held
		// through a long warehouse outage are redelivered at every AckWait,
		// and a server-side limit would abandon them uncounted. The limit that
		// matters, for events the warehouse refuses, is applied in refused.
		MaxDeliver:    -1,
		MaxAckPending: 4 * cfg.BatchSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// holderName is how this process names itself as the lease's holder.
func holderName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// releaseTimeout bounds the release of the lease at shutdown; a release
// that fails only makes the standby wait out the TTL.
const releaseTimeout = 5 * time.Second

// Run consumes while this aggregator holds the lease and stands by while
// another does, until ctx ends or a failure that no retry can mend. It
// releases the lease when it stops, so that a standby takes over at once.
func (a *Aggregator) Run(ctx context.Context) error {
	for {
		held, err := a.takeLease(ctx)
		if held == nil {
			return err
		}
		err = a.consume(ctx, held)
		if err == nil && ctx.Err() == nil {
			a.logger.Warn("lost the aggregator lease; stopped writing, standing by", "cause", context.Cause(held.Context()))
			continue
		}
		a.release(ctx, held)
		return err
	}
}

// release hands the lease back once nothing is written any more. A release
// that fails is only logged: a standby then takes over when it expires.
func (a *Aggregator) release(ctx context.Context, held *lease.Held) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := held.Release(rctx); err != nil {
		a.logger.Warn("could not release the aggregator lease; a standby takes over once it expires", "lease_ttl", a.cfg.LeaseTTL, "err", err)
		return
	}
	a.logger.Info("released the aggregator lease")
}

// takeLease waits until this aggregator holds the lease; nil, nil when ctx
// ends first.
func (a *Aggregator) takeLease(ctx context.Context) (*lease.Held, error) {
	started := time.Now()
	if holder, err := a.lease.Holder(ctx); err == nil && holder != "" {
		a.logger.Info("standing by: another aggregator holds the lease", "holder", holder, "lease_ttl", a.cfg.LeaseTTL)
	}
	var failures uint64
	held, err := a.lease.Acquire(ctx, func(err error) {
		if failures++; logsample.Due(failures) {
			a.logger.Warn("cannot reach the aggregator lease; trying again", "tries_failed", failures, "err", err)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, err
	}
	a.logger.Info("took the aggregator lease; consuming", "waited", time.Since(started).Round(time.Millisecond), "lease_ttl", a.cfg.LeaseTTL)
	return held, nil
}

// consume fetches and writes while ctx lives and held is this aggregator's;
// it returns nil when either ends. Fetching and validating the next batch
// overlaps writing the current one; at most one validated batch waits, so a
// slow warehouse stops the fetching. When the lease is lost, the batches not
// yet written are sent back unwritten.
func (a *Aggregator) consume(ctx context.Context, held *lease.Held) error {
	a.held.Store(held)
	if b, ok := a.writer.(Beginner); ok {
		b.Begin(held.Context())
	}
	iter, err := a.consumer.Messages(jetstream.PullMaxMessages(2 * a.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("consume %s: %w", contract.EventsStream, err)
	}
	src := pullSource{iter}
	defer src.Stop()
	fetchCtx, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	writeCtx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	lost := context.AfterFunc(held.Context(), func() {
		stopFetching()
		stopWriting()
	})
	defer lost()
	// Unbuffered: a batch is kept alive in handOver until the writer takes it;
	// in a channel buffer it would wait unseen and be redelivered.
	ready := make(chan []pending)
	fetched := make(chan error, 1)
	go func() {
		fetched <- a.fetch(fetchCtx, src, ready)
		close(ready)
	}()
	for batch := range ready {
		if err := a.write(writeCtx, batch); err != nil {
			stopFetching()
			for rest := range ready {
				nakAll(rest)
			}
			return err
		}
	}
	return <-fetched
}

// fetch gathers batches, validates them and hands the valid part to the
// writer, until ctx ends.
func (a *Aggregator) fetch(ctx context.Context, src Source, ready chan<- []pending) error {
	for {
		msgs, err := batch.Collect(ctx, a.cfg.BatchSize, a.cfg.FlushInterval, src.Next)
		if valid := a.validate(ctx, msgs); len(valid) > 0 {
			a.handOver(ready, valid)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch from %s: %w", contract.EventsStream, err)
		}
	}
}

// handOver waits for the writer to take batch, which it does with every
// batch until ready is closed. Meanwhile the batch is kept ours: behind a
// long warehouse outage it would otherwise be redelivered every AckWait.
func (a *Aggregator) handOver(ready chan<- []pending, batch []pending) {
	select {
	case ready <- batch:
		return
	default:
	}
	// It must wait: the wait starts with a fresh AckWait, whatever the
	// gathering of the batch took.
	inProgress(batch)
	stop := a.keepAlive(batch)
	defer stop()
	ready <- batch
}

// keepAlive tells the broker every keepAliveEvery that the messages of batch
// are in progress, until stop is called. Settled messages are skipped by the
// client, so it may run over a batch that is being settled piece by piece.
func (a *Aggregator) keepAlive(batch []pending) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(a.keepAliveEvery())
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				inProgress(batch)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// keepAliveEvery is how often held messages are reported in progress, well
// within AckWait.
func (a *Aggregator) keepAliveEvery() time.Duration {
	return max(a.cfg.AckWait/3, 100*time.Millisecond)
}

func inProgress(batch []pending) {
	for _, p := range batch {
		_ = p.msg.InProgress()
	}
}

func nakAll(batch []pending) {
	for _, p := range batch {
		_ = p.msg.Nak()
	}
}

// pending is a valid message waiting for the warehouse.
type pending struct {
	msg       Message
	record    Record
	delivered uint64 // how often the broker has delivered it, this time included
}

// validate dead-letters the invalid messages and returns the valid ones.
func (a *Aggregator) validate(ctx context.Context, msgs []Message) []pending {
	a.Stats.Received.Add(uint64(len(msgs)))
	valid := make([]pending, 0, len(msgs))
	for _, msg := range msgs {
		meta, err := msg.Metadata()
		if err != nil {
			a.logger.Error("message without JetStream metadata; terminating it", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		ev, err := a.validator.Decode(msg.Data())
		if err == nil && nik.HasRun(msg.Subject()) {
			// The stream takes any subject under its prefix; one that could
			// hold a NIK must not be kept, whatever the payload.
			err = &events.Error{Reason: events.ReasonInvalidField, Field: "subject", Detail: "holds 16 digits that could be a NIK"}
		}
		if err != nil {
			a.deadLetter(ctx, msg, meta, reasonOf(err), err.Error())
			continue
		}
		valid = append(valid, pending{msg: msg, record: Record{Event: ev, Seq: meta.Sequence.Stream}, delivered: meta.NumDelivered})
	}
	return valid
}

func reasonOf(err error) string {
	var ve *events.Error
	if errors.As(err, &ve) {
		return string(ve.Reason)
	}
	return "invalid"
}

// Validate refuses values that would break the aggregator: an empty batch
// panics, a zero retry interval spins against a down warehouse, a zero
// MaxDeliver dead-letters every refused event at once.
func (c Config) Validate() error {
	return errors.Join(
		config.NotEmpty("Durable", c.Durable),
		config.AtLeast("BatchSize", c.BatchSize, 1),
		config.Positive("FlushInterval", c.FlushInterval),
		minimum("AckWait", c.AckWait, time.Second),
		flushWithinAckWait(c.FlushInterval, c.AckWait),
		config.AtLeast("MaxDeliver", c.MaxDeliver, 1),
		config.Positive("RefusedDelay", c.RefusedDelay),
		config.Positive("RetryMaxInterval", c.RetryMaxInterval),
		config.NotNegative("FutureTolerance", c.FutureTolerance),
		validLease(c.LeaseTTL),
		config.AtLeast("LedgerFilterMiB", c.LedgerFilterMiB, 0),
	)
}

// validLease refuses a lease TTL that could not fence a writer.
func validLease(ttl time.Duration) error {
	if err := lease.For(ttl).Validate(); err != nil {
		return config.Invalid("LeaseTTL", "%v", err)
	}
	return nil
}

// minimum refuses a duration below least: an AckWait shorter than a second
// leaves no room for the in-progress reports that keep a held batch ours.
func minimum(field string, d, least time.Duration) error {
	if d < least {
		return config.Invalid(field, "must be at least %s, got %s", least, d)
	}
	return nil
}

// flushWithinAckWait refuses a batch that may take longer to gather than
// half the AckWait: its first messages would be delivered again meanwhile.
func flushWithinAckWait(flush, ackWait time.Duration) error {
	if flush > ackWait/2 {
		return config.Invalid("FlushInterval", "must be at most half of ACK_WAIT (%s), got %s", ackWait, flush)
	}
	return nil
}
