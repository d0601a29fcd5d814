package alerter_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestAFailingWebhookIsLoggedWithItsHostOnly(t *testing.T) {
	e := start(t)
	const token = "T0KEN-in-the-path"
	cfg := testConfig()
	// Nothing listens there: every post fails with the client's error, which
	// quotes the URL.
	cfg.WebhookURL = fmt.Sprintf("http://hook:pass-word@127.0.0.1:%d/services/%s?sig=query-secret", testenv.FreePort(t), token)
	cfg.WebhookMaxElapsed = 100 * time.Millisecond
	var logs testenv.LogBuffer
	a, err := alerter.Setup(e.ctx, cfg, e.js, e.conn, broker.StreamOptions{}, "", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	a.Now = func() time.Time { return feb13 }
	e.february(t)
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.Stats.WebhookFailed.Load() >= 1 })
	out := logs.String()
	if !strings.Contains(out, "webhook delivery failed") || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("the failure was not logged with its host:\n%s", out)
	}
	for _, secret := range []string{token, "pass-word", "query-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q:\n%s", secret, out)
		}
	}
}
