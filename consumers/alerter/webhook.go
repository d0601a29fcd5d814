package alerter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/retry"
)

// webhook is the Sink that posts alerts to IKD_ALERTER_WEBHOOK_URL from one
// goroutine, in order, so that a slow or failing webhook never holds up
// evaluation.
type webhook struct {
	cfg    Config
	client *http.Client
	stats  *Stats
	logger *slog.Logger
	queue  chan Alert
	stop   context.CancelFunc
	done   chan struct{}
}

// startWebhook starts the sender.
func startWebhook(cfg Config, stats *Stats, logger *slog.Logger) *webhook {
	size := cfg.WebhookQueue
	if size <= 0 {
		size = 1000
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhook{cfg: cfg, client: &http.Client{Timeout: cfg.WebhookTimeout}, stats: stats, logger: logger,
		queue: make(chan Alert, size), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				return
			case al := <-w.queue:
				w.deliver(ctx, al)
			}
		}
	}()
	return w
}

// Send queues the alert; when the queue is full it is dropped and logged
// (IKD_ALERTS and ikd.alerts still hold it).
func (w *webhook) Send(al Alert) {
	select {
	case w.queue <- al:
	default:
		w.stats.WebhookFailed.Add(1)
		w.logger.Error("webhook queue full; alert not posted", "alert_id", al.AlertID, "state", al.State)
	}
}

// Close stops the sender; deliveries still queued are dropped.
func (w *webhook) Close() {
	w.stop()
	<-w.done
}

// deliver posts one alert with capped exponential backoff; it logs once, when
// it gives up.
func (w *webhook) deliver(ctx context.Context, al Alert) {
	body, err := json.Marshal(al)
	if err != nil {
		return
	}
	attempts := 0
	post := func() error {
		attempts++
		return w.post(ctx, al, body)
	}
	err = retry.Do(ctx, webhookPolicy(w.cfg), post, func(err error) bool { return !errors.As(err, new(*refusedError)) }, nil)
	if err != nil {
		if ctx.Err() == nil {
			w.stats.WebhookFailed.Add(1)
			w.logger.Error("webhook delivery failed", "alert_id", al.AlertID, "state", al.State, "attempts", attempts, "err", err)
		}
		return
	}
	w.stats.WebhookDelivered.Add(1)
	if attempts > 1 {
		w.logger.Info("webhook delivered after retries", "alert_id", al.AlertID, "attempts", attempts)
	}
}

// post makes one attempt; a *refusedError is an answer no repost changes.
func (w *webhook) post(ctx context.Context, al Alert, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return &refusedError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", al.MsgID())
	resp, err := w.client.Do(req)
	if err != nil {
		return redactURLError(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return judgeAnswer(resp.StatusCode, resp.Status)
}

// judgeAnswer is what a webhook's answer means: nil for taken, an error to
// retry when a later post may be taken (the server's trouble, throttling, a
// timeout), a *refusedError otherwise.
func judgeAnswer(code int, status string) error {
	switch {
	case code < 300:
		return nil
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return fmt.Errorf("webhook answered %s", status)
	}
	return &refusedError{fmt.Errorf("webhook answered %s", status)}
}

// webhookMaxInterval caps the wait between two posts of one alert.
const webhookMaxInterval = 10 * time.Second

// webhookPolicy is how one alert's delivery is retried: from
// IKD_ALERTER_WEBHOOK_INITIAL_INTERVAL, doubling up to webhookMaxInterval,
// for up to IKD_ALERTER_WEBHOOK_MAX_ELAPSED.
func webhookPolicy(cfg Config) retry.Policy {
	return retry.Policy{Initial: cfg.WebhookInitialInterval, Max: webhookMaxInterval, Jitter: 0.5, GiveUpAfter: cfg.WebhookMaxElapsed}
}

// refusedError is a webhook's answer that no repost changes.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// redactURLError cuts the webhook URL in an error of the HTTP client down to
// its host, since its path or query may hold the webhook's token.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = config.RedactURL(ue.URL)
	}
	return err
}
