package alerter_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
)

// run starts a.Run and returns what it returns, on a channel.
func run(ctx context.Context, a *alerter.Alerter) <-chan error {
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return done
}

// runInBackground runs a until the test ends, which Run must end without
// error.
func (e *env) runInBackground(t *testing.T, a *alerter.Alerter) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := run(ctx, a)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

func TestRunStopsWithTheCauseWhenItsChangesConsumerIsDeleted(t *testing.T) {
	// The deletion is seen either by the fetch waiting at the time or, when it
	// happened between fetches, by the next one.
	for name, whileFetching := range map[string]bool{"while fetching": true, "before running": false} {
		t.Run(name, func(t *testing.T) {
			e := start(t)
			cfg := testConfig()
			a := e.alerter(t, cfg)
			deleteConsumer := func() {
				if err := e.js.DeleteConsumer(e.ctx, broker.ChangesStream, cfg.Durable); err != nil {
					t.Fatal(err)
				}
			}
			if !whileFetching {
				deleteConsumer()
			}
			done := run(e.ctx, a)
			if whileFetching {
				// Into the wait of a fetch: the consumer holds its pull request.
				waitFor(t, func() bool {
					c, err := e.js.Consumer(e.ctx, broker.ChangesStream, cfg.Durable)
					if err != nil {
						return false
					}
					info, err := c.Info(e.ctx)
					return err == nil && info.NumWaiting > 0
				})
				deleteConsumer()
			}
			select {
			case err := <-done:
				if (!errors.Is(err, jetstream.ErrConsumerDeleted) && !errors.Is(err, nats.ErrNoResponders)) ||
					!strings.Contains(err.Error(), cfg.Durable) {
					t.Fatalf("run returned %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("run goes on without its consumer")
			}
		})
	}
}

func TestQuietChangesStreamIsNotLoggedAsAFailure(t *testing.T) {
	e := start(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := alerter.Setup(e.ctx, testConfig(), e.alerterJS, e.conn, broker.StreamOptions{}, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	a.Now = func() time.Time { return feb13 }
	ctx, cancel := context.WithTimeout(e.ctx, 2500*time.Millisecond) // two fetches run out empty
	defer cancel()
	if err := <-run(ctx, a); err != nil {
		t.Fatal(err)
	}
	if logs.Len() > 0 {
		t.Fatalf("an idle stream logged:\n%s", logs.String())
	}
}
