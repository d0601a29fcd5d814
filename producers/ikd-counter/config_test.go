package main

import (
	"os"
	"strings"
	"testing"

	"github.com/ikd-pipeline/ikd/internal/config"
)

func TestConfigRefusesAValueThatBreaksTheCounterNamingItsVariable(t *testing.T) {
	cases := []struct{ variable, value string }{
		{"IKD_NATS_URL", "127.0.0.1:4222"},
		{"IKD_NATS_URL", "nats://a:4222,https://b"},
		{"IKD_FUTURE_TOLERANCE", "-1m"},
		{"IKD_STREAM_REPLICAS", "-1"},
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
		if err := config.Load(&cfg); err == nil || !strings.Contains(err.Error(), c.variable+":") {
			t.Errorf("%s=%q: got %v, want an error naming %s", c.variable, c.value, err, c.variable)
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
