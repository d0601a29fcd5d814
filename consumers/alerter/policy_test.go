package alerter

import (
	"testing"
	"time"
)

func TestEveryConfigValidateAcceptsGivesAValidWebhookPolicy(t *testing.T) {
	for _, initial := range []time.Duration{time.Millisecond, 500 * time.Millisecond, webhookMaxInterval, webhookMaxInterval + 1} {
		cfg := DefaultConfig()
		cfg.WebhookInitialInterval = initial
		if cfg.Validate() == nil && webhookPolicy(cfg).Validate() != nil {
			t.Errorf("initial %s: accepted by Config.Validate, refused by the retry policy: %v", initial, webhookPolicy(cfg).Validate())
		}
	}
	if err := fetchPolicy.Validate(); err != nil {
		t.Errorf("fetch policy: %v", err)
	}
}
