package alerter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/logsample"
	"github.com/ikd-pipeline/ikd/internal/retry"
)

// What the alerter reads and writes, as it needs them; the rules in eval.go
// see none of it. The warehouse (store.go) is its AttainmentReader and
// AlertStore, IKD_ALERTS (publish.go) its Publisher, the webhook
// (webhook.go) a Sink.

// AttainmentReader reads regions' figures.
type AttainmentReader interface {
	// Attainment returns, as of now's day in WIB, the current year's figures
	// of every region with a target and some of the year gone, or only of
	// the named cities and their provinces when cities is not nil.
	Attainment(ctx context.Context, now time.Time, cities []string) ([]Row, error)
}

// AlertStore keeps the history of transitions that every alerter shares.
type AlertStore interface {
	// Latest returns the latest transition of every alert, by Key().
	Latest(ctx context.Context) (map[string]Alert, error)
	// Record appends a transition; the same transition recorded twice is
	// kept once.
	Record(ctx context.Context, al Alert) error
}

// Publisher announces a transition to its subscribers before it is
// recorded. fresh is false when the transition had been published already,
// by another alerter or an earlier attempt.
type Publisher interface {
	Publish(ctx context.Context, al Alert) (fresh bool, err error)
}

// Sink is told of every new transition after it is recorded. Send must not
// wait on anything slow; Close stops it.
type Sink interface {
	Send(al Alert)
	Close()
}

// Stats are running totals since start.
type Stats struct {
	Evaluations      atomic.Uint64
	Fired            atomic.Uint64 // firing transitions, escalations included
	Resolved         atomic.Uint64
	PublishFailed    atomic.Uint64
	WebhookDelivered atomic.Uint64
	WebhookFailed    atomic.Uint64 // deliveries given up after retries, or dropped
}

// Evaluation is what one evaluation read and how long it took, from reading
// the alerts' history to the last transition applied.
type Evaluation struct {
	Cities int // cities named by the announcements; 0 for every region
	Rows   int // regions read from the views
	Took   time.Duration
	Err    error
}

// Alerter evaluates the rules and keeps the state of every alert.
type Alerter struct {
	cfg       Config
	consumer  jetstream.Consumer
	reader    AttainmentReader
	store     AlertStore
	publisher Publisher
	sinks     []Sink
	logger    *slog.Logger
	// Now is the clock; evaluation is as of Now's date in WIB. Tests set it.
	Now   func() time.Time
	Stats Stats
	// Evaluated, when set, is told what each evaluation cost; the bench
	// measures the alerter at national scale with it.
	Evaluated func(Evaluation)

	evalMu sync.Mutex // one evaluation at a time
	mu     sync.RWMutex
	state  map[string]Alert // latest transition per Key()

	// Run's loop alone touches these: the pause after a failed fetch and
	// how many failed in a row.
	fetchPause    backoff.BackOff
	fetchFailures uint64
}

// fetchPolicy paces fetches while IKD_CHANGES cannot be read: the first pause
// is about the second it always was, and a long broker outage settles at one
// try every few seconds. It never gives up; the broker comes back.
var fetchPolicy = retry.Policy{Initial: time.Second, Max: 5 * time.Second, Jitter: 0.5}

// Setup readies both ends (streams, schema and reference regions) and returns
// a started alerter, as chwriter.Setup does for the aggregator.
func Setup(ctx context.Context, cfg Config, js jetstream.JetStream, conn driver.Conn, streams broker.StreamOptions, cluster string, logger *slog.Logger) (*Alerter, error) {
	if err := endpoints.Ready(ctx, js, conn, streams, cluster, logger); err != nil {
		return nil, err
	}
	return New(ctx, cfg, js, conn, logger)
}

// New creates or updates the durable consumer on IKD_CHANGES, loads the state
// of every alert from ikd.alerts and starts the webhook sender when
// cfg.WebhookURL is set. Close stops the sender.
func New(ctx context.Context, cfg Config, js jetstream.JetStream, conn driver.Conn, logger *slog.Logger) (*Alerter, error) {
	if logger == nil {
		logger = slog.Default()
	}
	// A broker electing a leader answers late: the set-up waits for it.
	var consumer jetstream.Consumer
	err := broker.Request(ctx, "create consumer", logger, func(ctx context.Context) (err error) {
		consumer, err = js.CreateOrUpdateConsumer(ctx, broker.ChangesStream, jetstream.ConsumerConfig{
			Durable:       cfg.Durable,
			Description:   "re-evaluates alerts for the regions the aggregator changed",
			FilterSubject: broker.ChangesPrefix + ".>",
			AckPolicy:     jetstream.AckExplicitPolicy,
			// A new alerter evaluates everything at start; older changes add nothing.
			DeliverPolicy: jetstream.DeliverNewPolicy,
			AckWait:       changesAckWait,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, broker.ChangesStream, err)
	}
	wh := warehouseStore{conn}
	a := &Alerter{cfg: cfg, consumer: consumer, reader: wh, store: wh, logger: logger, Now: time.Now, fetchPause: fetchPolicy.BackOff()}
	a.publisher = streamPublisher{js: js, failed: &a.Stats.PublishFailed}
	if err := a.load(ctx); err != nil {
		return nil, err
	}
	if cfg.WebhookURL != "" {
		a.sinks = append(a.sinks, startWebhook(cfg, &a.Stats, logger))
	}
	return a, nil
}

// Close stops the sinks; webhook deliveries still queued are dropped.
func (a *Alerter) Close() {
	for _, s := range a.sinks {
		s.Close()
	}
	a.sinks = nil
}

// Firing returns the alerts firing now, by Key().
func (a *Alerter) Firing() map[string]Alert {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return firing(a.state)
}

// load takes the latest transition of every alert from the store as the
// state.
func (a *Alerter) load(ctx context.Context) error {
	state, err := a.store.Latest(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.state = state
	a.mu.Unlock()
	return nil
}

// Evaluate applies the rules to the named cities and their provinces, or to
// every region when cities is nil, as of a.Now(), resolves the alerts of the
// years (WIB) gone by, and records, publishes and posts every transition.
func (a *Alerter) Evaluate(ctx context.Context, cities []string) error {
	a.evalMu.Lock()
	defer a.evalMu.Unlock()
	start := time.Now()
	n, err := a.evaluate(ctx, cities)
	if a.Evaluated != nil {
		a.Evaluated(Evaluation{Cities: len(cities), Rows: n, Took: time.Since(start), Err: err})
	}
	return err
}

// evaluate is Evaluate's work, under its lock; it returns the regions read.
func (a *Alerter) evaluate(ctx context.Context, cities []string) (int, error) {
	// Other alerters may have recorded transitions since: start from what
	// the store holds, the one history every replica shares.
	if err := a.load(ctx); err != nil {
		return 0, err
	}
	now := a.Now()
	rows, err := a.reader.Attainment(ctx, now, cities)
	if err != nil {
		return 0, err
	}
	a.Stats.Evaluations.Add(1)
	// Only Evaluate replaces the state, under evalMu: it stays as loaded.
	a.mu.RLock()
	changes := yearEnded(a.state, now)
	for _, r := range rows {
		changes = append(changes, transitions(a.cfg, a.state, r, now)...)
	}
	a.mu.RUnlock()
	return len(rows), a.apply(ctx, changes)
}

// apply publishes each transition, then records it and takes it into the
// state. The publication goes first, under the transition's Nats-Msg-Id, so
// that an alerter dying between the two leaves the transition unrecorded, and
// another alerter (or this one, next time) finds it again: the broker drops
// the repeated publication within its duplicate window, and ikd.alerts drops
// the repeated row by its insert token. Only the alerter whose publication
// was new logs it and sends it to the sinks. A transition that could not be
// published is neither recorded nor taken, so the next evaluation tries again.
func (a *Alerter) apply(ctx context.Context, changes []Alert) error {
	var errs []error
	for _, al := range changes {
		fresh, err := a.publisher.Publish(ctx, al)
		if err == nil {
			err = a.store.Record(ctx, al)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.mu.Lock()
		a.state[al.Key()] = al
		a.mu.Unlock()
		if !fresh {
			continue
		}
		if al.State == Firing {
			a.Stats.Fired.Add(1)
		} else {
			a.Stats.Resolved.Add(1)
		}
		a.logger.Info("alert", "rule", al.Rule, "state", al.State, "severity", al.Severity, "region", al.RegionCode, "year", al.Year, "alert_id", al.AlertID, "message", al.Message)
		for _, s := range a.sinks {
			s.Send(al)
		}
	}
	return errors.Join(errs...)
}

// Run evaluates every region at start and every Interval, and the regions
// named on IKD_CHANGES as they come, until ctx ends or its consumer on
// IKD_CHANGES is deleted.
func (a *Alerter) Run(ctx context.Context) error {
	if err := a.Evaluate(ctx, nil); err != nil && ctx.Err() == nil {
		a.logger.Error("evaluation failed; retrying at the next interval", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.schedule(ctx)
	}()
	// The scheduled evaluations stop with Run, whatever ends it.
	defer func() { cancel(); <-done }()
	for ctx.Err() == nil {
		if err := a.poll(ctx); err != nil {
			return err
		}
	}
	return nil
}

// schedule evaluates every region each Interval until ctx ends.
func (a *Alerter) schedule(ctx context.Context) {
	interval := a.cfg.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := a.Evaluate(ctx, nil); err != nil && ctx.Err() == nil {
				a.logger.Error("scheduled evaluation failed", "err", err)
			}
		}
	}
}

// changesAckWait is how long the broker waits for an announcement's
// acknowledgement before it delivers it again (the broker's default, written
// out because ChangesWindow is bounded by it).
const changesAckWait = 30 * time.Second

// poll gathers the announcements of one ChangesWindow (at most 256),
// evaluates the cities they name together and acks them. It returns an error
// only when no later fetch can succeed.
func (a *Alerter) poll(ctx context.Context) error {
	window, cancel := context.WithTimeout(ctx, a.cfg.ChangesWindow)
	defer cancel()
	msgs, err := a.consumer.Fetch(256, jetstream.FetchContext(window))
	if err != nil {
		if ended := windowEnded(window, time.Now()); ended != nil {
			err = ended // the window, or Run, ended before the fetch began
		}
		return a.fetchFailed(ctx, err)
	}
	var got []jetstream.Msg
	var cities []string
	for msg := range msgs.Messages() {
		got = append(got, msg)
		named, err := announcedCities(msg.Data())
		if err != nil {
			a.logger.Warn("unreadable change announcement", "subject", msg.Subject(), "err", err)
		}
		cities = append(cities, named...)
	}
	if len(cities) > 0 {
		if err := a.Evaluate(ctx, cities); err != nil && ctx.Err() == nil {
			// The scheduled evaluation covers what was missed.
			a.logger.Error("evaluation of changed regions failed", "cities", len(cities), "err", err)
		}
	}
	for _, msg := range got {
		_ = msg.Ack()
	}
	// A failure ends the batch early; the messages before it are handled above.
	if err := msgs.Error(); err != nil {
		return a.fetchFailed(ctx, err)
	}
	a.fetched()
	return nil
}

// windowEnded says why a fetch's window has ended by now, or nil. A deadline
// can pass before the context's timer marks it done, and the fetch refuses
// such a context as an invalid option, so the deadline is read as well.
func windowEnded(window context.Context, now time.Time) error {
	if err := window.Err(); err != nil {
		return err
	}
	if deadline, ok := window.Deadline(); ok && !now.Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// announcedCities returns the cities named by one change announcement.
func announcedCities(data []byte) ([]string, error) {
	var ann contract.Announcement
	if err := json.Unmarshal(data, &ann); err != nil {
		return nil, err
	}
	return ann.Cities, nil
}

// fetchOutcome is what a failed fetch means for Run.
type fetchOutcome int

const (
	// fetchQuiet: a wait that ran out empty, or shutdown; nothing to say.
	fetchQuiet fetchOutcome = iota + 1
	// fetchGone: the durable consumer was deleted; only New recreates it,
	// so Run ends and a restart mends it.
	fetchGone
	// fetchAsk: the consumer may be gone; a fetch reports its deletion only
	// when it happens during that fetch, later ones just find no responders.
	fetchAsk
	// fetchRetry: anything else; paused and retried, so as not to spin.
	fetchRetry
)

// judgeFetch says what a failed fetch means; stopping is whether Run's
// context has ended.
func judgeFetch(err error, stopping bool) fetchOutcome {
	switch {
	case stopping, errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoMessages),
		errors.Is(err, context.DeadlineExceeded): // the window ended before the broker said so
		return fetchQuiet
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		return fetchGone
	case errors.Is(err, nats.ErrNoResponders):
		return fetchAsk
	}
	return fetchRetry
}

// fetchFailed handles a failed fetch as judgeFetch says: it returns an error
// only when the consumer is gone.
func (a *Alerter) fetchFailed(ctx context.Context, err error) error {
	outcome := judgeFetch(err, ctx.Err() != nil)
	if outcome == fetchAsk && a.consumerGone(ctx) {
		outcome = fetchGone
	}
	switch outcome {
	case fetchQuiet:
		a.fetched()
		return nil
	case fetchGone:
		return fmt.Errorf("fetch from %s: consumer %s is gone: %w", broker.ChangesStream, a.cfg.Durable, err)
	}
	// An outage may last hours: its first failure and every thousandth are logged.
	if a.fetchFailures++; logsample.Due(a.fetchFailures) {
		a.logger.Warn("fetch from IKD_CHANGES failed; retrying", "stream", broker.ChangesStream, "durable", a.cfg.Durable, "failures", a.fetchFailures, "err", err)
	}
	sleep(ctx, a.fetchPause.NextBackOff())
	return nil
}

// fetched ends a run of failed fetches.
func (a *Alerter) fetched() {
	if a.fetchFailures > 0 {
		a.fetchFailures = 0
		a.fetchPause.Reset()
	}
}

// consumerGone asks the server whether the durable consumer still exists.
func (a *Alerter) consumerGone(ctx context.Context) bool {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := a.consumer.Info(ictx)
	return errors.Is(err, jetstream.ErrConsumerNotFound)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
