package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/producers/spool"
)

func TestLinkIsJudgedFromTheConnectionAndTheLastAttempt(t *testing.T) {
	since := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		conn    string
		st      spool.Stats
		want    string
		wantErr string
	}{
		{"never connected", "", spool.Stats{Link: spool.LinkUnknown}, LinkConnecting, ""},
		{"connected, nothing sent yet", "CONNECTED", spool.Stats{Link: spool.LinkUnknown}, spool.LinkUp, ""},
		{"connected, last attempt acknowledged", "CONNECTED", spool.Stats{Link: spool.LinkUp, LinkSince: since}, spool.LinkUp, ""},
		{"connected, last attempt failed", "CONNECTED", spool.Stats{Link: spool.LinkDown, LinkSince: since, LinkError: "no response from stream"}, spool.LinkDown, "no response from stream"},
		{"reconnecting, idle", "RECONNECTING", spool.Stats{Link: spool.LinkUp, LinkSince: since}, spool.LinkDown, "connection to the broker is RECONNECTING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, gotErr := link(tt.conn, tt.st)
			if got != tt.want || gotErr != tt.wantErr {
				t.Errorf("link = %q, %q; want %q, %q", got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOldestWaitingAgeIsCountedFromWhenItWasReceived(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := status("X", true, "CONNECTED", spool.Stats{WaitingEvents: 3, Oldest: now.Add(-90 * time.Second)}, totals{}, now)
	if s.OldestWaitingSecs != 90 || s.OldestReceivedAt == nil {
		t.Errorf("oldest %v, %v s; want 90 s", s.OldestReceivedAt, s.OldestWaitingSecs)
	}
	if s = status("X", true, "CONNECTED", spool.Stats{}, totals{}, now); s.OldestReceivedAt != nil || s.OldestWaitingSecs != 0 {
		t.Errorf("nothing waiting: oldest %v, %v s; want none", s.OldestReceivedAt, s.OldestWaitingSecs)
	}
}

func TestConfigValidationNamesTheVariable(t *testing.T) {
	good := Config{OfficeID: "3171-DKI-01", Listen: "127.0.0.1:8470", SpoolDir: "/var/lib/x", SpoolLimitBytes: 1, MaxBodyBytes: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no office", func(c *Config) { c.OfficeID = "" }, "IKD_OFFICE_ID"},
		{"office with a space", func(c *Config) { c.OfficeID = "a b" }, "IKD_OFFICE_ID"},
		{"listen without a port", func(c *Config) { c.Listen = "localhost" }, "IKD_AGENT_LISTEN"},
		{"no spool", func(c *Config) { c.SpoolDir = "" }, "IKD_SPOOL_DIR"},
		{"no room", func(c *Config) { c.SpoolLimitBytes = 0 }, "IKD_SPOOL_LIMIT_BYTES"},
		{"no body", func(c *Config) { c.MaxBodyBytes = -1 }, "IKD_AGENT_MAX_BODY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v; want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestABodyIsOneJSONValueOnlyWhenItIsAnArrayOrSentAsJSON(t *testing.T) {
	tests := []struct {
		contentType, body string
		want              bool
	}{
		{"application/x-ndjson", "{\"a\":1}\n{\"a\":2}\n", false},
		{"", " [{\"a\":1}]", true},
		{"application/json; charset=utf-8", "{\n  \"a\": 1\n}", true},
		{"application/json", "{\"a\":1}\n{\"a\":2}\n", false},
		{"text/plain", "{\n  \"a\": 1\n}", false},
	}
	for _, tt := range tests {
		if got := isJSONValue(tt.contentType, []byte(tt.body)); got != tt.want {
			t.Errorf("isJSONValue(%q, %q) = %v, want %v", tt.contentType, tt.body, got, tt.want)
		}
	}
}
