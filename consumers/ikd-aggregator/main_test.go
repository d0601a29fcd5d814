package main

import (
	"os"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// clearEnv removes every IKD_ variable for the test (restored after it), so
// that it sees the defaults of the envconfig tags.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.Prefix+"_") {
			t.Setenv(name, "")
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestStartRefusesAValueThatBreaksTheAggregatorNamingItsVariable(t *testing.T) {
	cases := []struct{ variable, value string }{
		{"IKD_AGGREGATOR_BATCH_SIZE", "0"},
		{"IKD_AGGREGATOR_RETRY_MAX_INTERVAL", "0s"},
		{"IKD_AGGREGATOR_MAX_DELIVER", "0"},
		{"IKD_AGGREGATOR_FLUSH_INTERVAL", "-1s"},
		{"IKD_AGGREGATOR_DURABLE", " "},
		{"IKD_NATS_URL", "127.0.0.1:4222"},
		{"IKD_CLICKHOUSE_DSN", "mysql://db:3306"},
		{"IKD_STREAM_REPLICAS", "7"},
		{"IKD_STREAM_DUPLICATE_WINDOW", "-1m"},
		{"IKD_PPROF_ADDR", "0.0.0.0:6060"},
	}
	clearEnv(t)
	var defaults Config
	if err := config.Load(&defaults); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for _, c := range cases {
		t.Run(c.variable, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(c.variable, c.value)
			var cfg Config
			err := config.Load(&cfg)
			if err == nil || !strings.Contains(err.Error(), c.variable+":") {
				t.Fatalf("%s=%q: got %v, want an error naming %s", c.variable, c.value, err, c.variable)
			}
		})
	}
}
