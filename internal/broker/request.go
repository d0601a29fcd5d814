package broker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/logsample"
	"github.com/ikd-pipeline/ikd/internal/retry"
)

// Request runs op, a request a program makes to set itself up (what names
// it: its consumer, its lease's bucket), each attempt bounded by
// requestTimeout, until it succeeds, fails for good, or ctx ends. A cluster
// electing a leader after a node died answers such a request late or not at
// all for a while; a program starting then waits instead of exiting, and
// says so on logger (a sample of the failed attempts).
func Request(ctx context.Context, what string, logger *slog.Logger, op func(ctx context.Context) error) error {
	var failures uint64
	return retry.Do(ctx, readRetry, func() error {
		actx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return op(actx)
	}, func(err error) bool { return ctx.Err() == nil && requestRetryable(err) }, func(err error, wait time.Duration) {
		if failures++; logsample.Due(failures) {
			logger.Warn("the broker does not answer yet; trying again", "request", what, "tries_failed", failures, "retry_in", wait.Round(time.Millisecond), "err", err)
		}
	})
}

// requestRetryable is retryable without what a set-up request cannot cure by
// waiting: a bucket nobody created, or the broker saying the request itself
// is wrong (a 4xx other than a timeout or a throttle).
func requestRetryable(err error) bool {
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) && api.Code >= 400 && api.Code < http.StatusInternalServerError &&
		api.Code != http.StatusRequestTimeout && api.Code != http.StatusTooManyRequests {
		return false
	}
	return retryable(err)
}
