package alerter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
)

func TestConfigValidateRefusesValuesThatBreakTheAlerter(t *testing.T) {
	cases := []struct {
		field  string
		change func(*alerter.Config)
	}{
		{"Durable", func(c *alerter.Config) { c.Durable = "" }},
		{"Interval", func(c *alerter.Config) { c.Interval = 0 }},
		{"ChangesWindow", func(c *alerter.Config) { c.ChangesWindow = 0 }},
		{"ChangesWindow", func(c *alerter.Config) { c.ChangesWindow = 20 * time.Second }},
		{"MarginPct", func(c *alerter.Config) { c.MarginPct = -1 }},
		{"CriticalFactor", func(c *alerter.Config) { c.CriticalFactor = 1.5 }},
		{"HysteresisPct", func(c *alerter.Config) { c.HysteresisPct = -2 }},
		{"StaleDays", func(c *alerter.Config) { c.StaleDays = -1 }},
		{"WebhookURL", func(c *alerter.Config) { c.WebhookURL = "ftp://alerts.example.org/hook" }},
		{"WebhookURL", func(c *alerter.Config) { c.WebhookURL = "alerts.example.org/hook" }},
		{"WebhookMaxElapsed", func(c *alerter.Config) { c.WebhookMaxElapsed = -time.Second }},
		{"WebhookInitialInterval", func(c *alerter.Config) { c.WebhookInitialInterval = 0 }},
		{"WebhookInitialInterval", func(c *alerter.Config) { c.WebhookInitialInterval = time.Minute }},
		{"WebhookTimeout", func(c *alerter.Config) { c.WebhookTimeout = 0 }},
		{"WebhookQueue", func(c *alerter.Config) { c.WebhookQueue = 0 }},
	}
	ok := alerter.DefaultConfig()
	ok.WebhookURL = "https://user:secret@alerts.example.org/hook"
	if err := ok.Validate(); err != nil {
		t.Fatalf("the defaults with an https webhook are refused: %v", err)
	}
	for _, c := range cases {
		cfg := alerter.DefaultConfig()
		c.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%s: got %v, want an error naming it", c.field, err)
		}
	}
}
