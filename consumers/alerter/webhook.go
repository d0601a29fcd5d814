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

	"github.com/cenkalti/backoff/v4"

	"github.com/ikd-pipeline/ikd/internal/config"
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
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval = a.cfg.WebhookInitialInterval
	policy.MaxInterval = 10 * time.Second
	policy.MaxElapsedTime = a.cfg.WebhookMaxElapsed
	attempts := 0
	err = backoff.Retry(func() error {
		attempts++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.WebhookURL, bytes.NewReader(body))
		if err != nil {
			return backoff.Permanent(err)
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
			return backoff.Permanent(fmt.Errorf("webhook answered %s", resp.Status))
		}
	}, backoff.WithContext(policy, ctx))
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

// redactURLError cuts the webhook URL in an error of the HTTP client down to
// its host, since its path or query may hold the webhook's token.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = config.RedactURL(ue.URL)
	}
	return err
}
