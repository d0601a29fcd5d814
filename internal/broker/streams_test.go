package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/config"
)

func streamsByName(opt StreamOptions) map[string]jetstream.StreamConfig {
	m := map[string]jetstream.StreamConfig{}
	for _, c := range Streams(opt) {
		m[c.Name] = c
	}
	return m
}

func TestDeadLettersExpireAfterAMonthOrTheConfiguredAge(t *testing.T) {
	if got := streamsByName(StreamOptions{})[DeadLetterStream].MaxAge; got != 30*24*time.Hour {
		t.Errorf("default dead-letter MaxAge %s, want 30 days", got)
	}
	if got := streamsByName(StreamOptions{DeadLetterMaxAge: 72 * time.Hour})[DeadLetterStream].MaxAge; got != 72*time.Hour {
		t.Errorf("dead-letter MaxAge %s, want the configured 72h", got)
	}
}

func TestEveryStreamIsBoundedAndTheUnaggregatedRefuseRatherThanDrop(t *testing.T) {
	for name, c := range streamsByName(StreamOptions{}) {
		if c.MaxBytes <= 0 {
			t.Errorf("%s has no MaxBytes: a flood could fill the disk", name)
		}
		wantDiscard := jetstream.DiscardOld
		if name == EventsStream || name == DeadLetterStream {
			wantDiscard = jetstream.DiscardNew
		}
		if c.Discard != wantDiscard {
			t.Errorf("%s discards %v, want %v", name, c.Discard, wantDiscard)
		}
	}
	if got := streamsByName(StreamOptions{EventsMaxBytes: 1 << 20})[EventsStream].MaxBytes; got != 1<<20 {
		t.Errorf("events MaxBytes %d, want the configured 1MiB", got)
	}
}

func TestStreamOptionsRefusedAtLoadNameTheVariable(t *testing.T) {
	tests := []struct{ variable, value string }{
		{"IKD_STREAM_DEADLETTER_MAX_AGE", "-1h"},
		{"IKD_STREAM_EVENTS_MAX_BYTES", "-1"},
		{"IKD_STREAM_ALERTS_MAX_BYTES", "-1"},
		{"IKD_STREAM_DUPLICATE_WINDOW", "-1s"},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			t.Setenv(tt.variable, tt.value)
			var cfg struct {
				Streams StreamOptions `envconfig:"STREAM"`
			}
			if err := config.Load(&cfg); err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Errorf("%s=%s: %v, want an error naming it", tt.variable, tt.value, err)
			}
		})
	}
	var defaults struct {
		Streams StreamOptions `envconfig:"STREAM"`
	}
	if err := config.Load(&defaults); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

func TestSameLimitsIgnoresTheServersDefaults(t *testing.T) {
	want := Streams(StreamOptions{})[1]
	got := want
	got.MaxMsgs, got.Duplicates = -1, 2*time.Minute // what the server fills in
	if !SameLimits(got, want) {
		t.Error("a stream with the server's defaults filled in differs")
	}
	older := got
	older.MaxAge = 0 // made by a version that kept dead letters forever
	if SameLimits(older, want) {
		t.Error("a stream without MaxAge matches one with")
	}
	bigger := got
	bigger.MaxBytes = -1
	if SameLimits(bigger, want) {
		t.Error("an unbounded stream matches a bounded one")
	}
}
