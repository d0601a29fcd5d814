package alerter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ikd-pipeline/ikd/internal/config"
	"github.com/ikd-pipeline/ikd/internal/retry"
)

// startWebhook starts the one goroutine that posts alerts, in order, so that
// a slow or failing webhook never holds up evaluation.
func (a *Alerter) startWebhook() {
	size := a.cfg.WebhookQueue
	if size <= 0 {
		size = 1000
	}
	a.hooks = make(chan Alert, size)
	a.client = &http.Client{Timeout: a.cfg.WebhookTimeout}
	ctx, cancel := context.WithCancel(context.Background())
	a.stopHooks = cancel
	a.hooksDone = make(chan struct{})
	go func() {
		defer close(a.hooksDone)
		for {
			select {
			case <-ctx.Done():
				return
			case al := <-a.hooks:
				a.deliver(ctx, al)
			}
		}
	}()
}

// deliver posts one alert with capped exponential backoff; it logs once, when
// it gives up.
func (a *Alerter) deliver(ctx context.Context, al Alert) {
	body, err := json.Marshal(al)
	if err != nil {
		return
	}
	attempts := 0
	post := func() error {
		attempts++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.WebhookURL, bytes.NewReader(body))
		if err != nil {
			return &refusedError{err}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", al.MsgID())
		resp, err := a.client.Do(req)
		if err != nil {
			return redactURLError(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return nil
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
			return fmt.Errorf("webhook answered %s", resp.Status)
		default:
			return &refusedError{fmt.Errorf("webhook answered %s", resp.Status)}
		}
	}
	err = retry.Do(ctx, webhookPolicy(a.cfg), post, func(err error) bool { return !errors.As(err, new(*refusedError)) }, nil)
	if err != nil {
		if ctx.Err() == nil {
			a.Stats.WebhookFailed.Add(1)
			a.logger.Error("webhook delivery failed", "alert_id", al.AlertID, "state", al.State, "attempts", attempts, "err", err)
		}
		return
	}
	a.Stats.WebhookDelivered.Add(1)
	if attempts > 1 {
		a.logger.Info("webhook delivered after retries", "alert_id", al.AlertID, "attempts", attempts)
	}
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
