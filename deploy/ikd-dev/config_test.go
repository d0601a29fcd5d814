package main

import (
	"os"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config"
)

func TestConfigRefusesAValueThatBreaksIkdDevNamingItsVariable(t *testing.T) {
	cases := []struct{ variable, value string }{
		{"IKD_DATA_DIR", ""},
		{"IKD_NATS_LISTEN", "4222"},
		{"IKD_CLICKHOUSE_LISTEN", "localhost"},
		{"IKD_NATS_URL", "localhost:4222"},
		{"IKD_CLICKHOUSE_DSN", "localhost:8123"},
		{"IKD_CLICKHOUSE_PASSWORD", "secret"}, // without a user
		{"IKD_AGGREGATOR_BATCH_SIZE", "0"},
		{"IKD_ALERTER_WEBHOOK_URL", "ftp://example.org/hook"},
		{"IKD_STREAM_REPLICAS", "9"},
		{"IKD_CLICKHOUSE_READ_MAX_THREADS", "-2"},
		{"IKD_CLICKHOUSE_READ_MAX_THREADS", "100000"},
	}
	clearIKDEnv(t)
	var defaults Config
	if err := config.Load(&defaults); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for _, c := range cases {
		clearIKDEnv(t)
		t.Setenv(c.variable, c.value)
		var cfg Config
		err := config.Load(&cfg)
		want := c.variable
		if c.variable == "IKD_CLICKHOUSE_PASSWORD" {
			want = "IKD_CLICKHOUSE_USER"
		}
		if err == nil || !strings.Contains(err.Error(), want+":") {
			t.Errorf("%s=%q: got %v, want an error naming %s", c.variable, c.value, err, want)
		}
	}
}

// clearIKDEnv removes every IKD_ variable for the test (restored after it).
func clearIKDEnv(t *testing.T) {
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
