package alerter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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

// Stats are running totals since start.
type Stats struct {
	Evaluations      atomic.Uint64
	Fired            atomic.Uint64 // firing transitions, escalations included
	Resolved         atomic.Uint64
	PublishFailed    atomic.Uint64
	WebhookDelivered atomic.Uint64
	WebhookFailed    atomic.Uint64 // deliveries given up after retries, or dropped
}

// Alerter evaluates the rules and keeps the state of every alert.
type Alerter struct {
	cfg      Config
	js       jetstream.JetStream
	conn     driver.Conn
	consumer jetstream.Consumer
	logger   *slog.Logger
	// Now is the clock; evaluation is as of Now's date in WIB. Tests set it.
	Now   func() time.Time
	Stats Stats

	evalMu sync.Mutex // one evaluation at a time
	mu     sync.RWMutex
	state  map[string]Alert // latest transition per Key()

	hooks     chan Alert
	client    *http.Client
	stopHooks context.CancelFunc
	hooksDone chan struct{}

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
func Setup(ctx context.Context, cfg Config, js jetstream.JetStream, conn driver.Conn, streams broker.StreamOptions, logger *slog.Logger) (*Alerter, error) {
	if err := endpoints.Ready(ctx, js, conn, streams, logger); err != nil {
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
	consumer, err := js.CreateOrUpdateConsumer(ctx, broker.ChangesStream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "re-evaluates alerts for the regions the aggregator changed",
		FilterSubject: broker.ChangesPrefix + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		// A new alerter evaluates everything at start; older changes add nothing.
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, broker.ChangesStream, err)
	}
	a := &Alerter{cfg: cfg, js: js, conn: conn, consumer: consumer, logger: logger, Now: time.Now, state: map[string]Alert{}, fetchPause: fetchPolicy.BackOff()}
	if err := a.load(ctx); err != nil {
		return nil, err
	}
	if cfg.WebhookURL != "" {
		a.startWebhook()
	}
	return a, nil
}

// Close stops the webhook sender; deliveries still queued are dropped.
func (a *Alerter) Close() {
	if a.stopHooks != nil {
		a.stopHooks()
		<-a.hooksDone
		a.stopHooks = nil
	}
}

// Firing returns the alerts firing now, by Key().
func (a *Alerter) Firing() map[string]Alert {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make(map[string]Alert)
	for k, al := range a.state {
		if al.State == Firing {
			out[k] = al
		}
	}
	return out
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

// poll fetches one batch of announcements, evaluates the cities they name and
// acks them. It returns an error only when no later fetch can succeed.
func (a *Alerter) poll(ctx context.Context) error {
	msgs, err := a.consumer.Fetch(256, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return a.fetchFailed(ctx, err)
	}
	var got []jetstream.Msg
	var cities []string
	for msg := range msgs.Messages() {
		got = append(got, msg)
		cities = append(cities, a.announced(msg)...)
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

// announced returns the cities named by one change announcement.
func (a *Alerter) announced(msg jetstream.Msg) []string {
	var ann contract.Announcement
	if err := json.Unmarshal(msg.Data(), &ann); err != nil {
		a.logger.Warn("unreadable change announcement", "subject", msg.Subject(), "err", err)
		return nil
	}
	return ann.Cities
}

// fetchFailed handles a failed fetch: a wait that ran out empty is normal, a
// deleted consumer ends Run (only New recreates it, so a restart mends it),
// anything else is logged and retried after a pause so as not to spin.
func (a *Alerter) fetchFailed(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil, errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoMessages):
		a.fetched()
		return nil
	case a.consumerGone(ctx, err):
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

// consumerGone tells whether err means the durable consumer no longer exists.
// A fetch reports its deletion only when it happens during that fetch; later
// fetches just find no responders, so those ask the server.
func (a *Alerter) consumerGone(ctx context.Context, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return true
	}
	if !errors.Is(err, nats.ErrNoResponders) {
		return false
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = a.consumer.Info(ictx)
	return errors.Is(err, jetstream.ErrConsumerNotFound)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// publish sends one transition to IKD_ALERTS under its MsgID and tells
// whether the broker took it as new (false: another alerter, or an earlier
// attempt, published it within the duplicate window).
func (a *Alerter) publish(ctx context.Context, al Alert) (bool, error) {
	data, err := json.Marshal(al)
	if err != nil {
		return false, fmt.Errorf("encode alert %s: %w", al.MsgID(), err)
	}
	msg := nats.NewMsg(al.Subject())
	msg.Data = data
	msg.Header.Set(nats.MsgIdHdr, al.MsgID())
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := a.js.PublishMsg(pctx, msg)
	if err != nil {
		a.Stats.PublishFailed.Add(1)
		return false, fmt.Errorf("publish alert %s to %s: %w", al.MsgID(), msg.Subject, err)
	}
	return !ack.Duplicate, nil
}

// post queues the alert for the webhook, if there is one.
func (a *Alerter) post(al Alert) {
	if a.hooks == nil {
		return
	}
	select {
	case a.hooks <- al:
	default:
		a.Stats.WebhookFailed.Add(1)
		a.logger.Error("webhook queue full; alert not posted", "alert_id", al.AlertID, "state", al.State)
	}
}

func provinceOf(city string) string {
	p, _, _ := strings.Cut(city, ".")
	return p
}
