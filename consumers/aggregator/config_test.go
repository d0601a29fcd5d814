package aggregator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
)

func TestConfigValidateRefusesValuesThatBreakTheAggregator(t *testing.T) {
	cases := []struct {
		field  string
		change func(*aggregator.Config)
	}{
		{"Durable", func(c *aggregator.Config) { c.Durable = "" }},
		{"BatchSize", func(c *aggregator.Config) { c.BatchSize = 0 }},
		{"FlushInterval", func(c *aggregator.Config) { c.FlushInterval = 0 }},
		{"AckWait", func(c *aggregator.Config) { c.AckWait = 100 * time.Millisecond }},
		{"FlushInterval", func(c *aggregator.Config) { c.FlushInterval = c.AckWait }},
		{"MaxDeliver", func(c *aggregator.Config) { c.MaxDeliver = 0 }},
		{"RefusedDelay", func(c *aggregator.Config) { c.RefusedDelay = -time.Second }},
		{"RetryMaxInterval", func(c *aggregator.Config) { c.RetryMaxInterval = 0 }},
		{"FutureTolerance", func(c *aggregator.Config) { c.FutureTolerance = -time.Minute }},
		{"LeaseTTL", func(c *aggregator.Config) { c.LeaseTTL = 0 }},
		{"LeaseTTL", func(c *aggregator.Config) { c.LeaseTTL = 1500 * time.Millisecond }},
		{"LedgerFilterMiB", func(c *aggregator.Config) { c.LedgerFilterMiB = -1 }},
	}
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("the tests' configuration is refused: %v", err)
	}
	for _, c := range cases {
		cfg := testConfig()
		c.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%s: got %v, want an error naming it", c.field, err)
		}
	}
}
