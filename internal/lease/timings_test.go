package lease

import (
	"strings"
	"testing"
	"time"
)

func TestTimingsValidateRefusesALeaseThatCannotFence(t *testing.T) {
	tests := []struct {
		name string
		t    Timings
		want string // "" means valid
	}{
		{"the default", For(10 * time.Second), ""},
		{"the shortest", For(time.Second), ""},
		{"zero TTL", For(0), "TTL"},
		{"negative TTL", For(-time.Second), "TTL"},
		{"TTL in fractions of a second", For(1500 * time.Millisecond), "whole number of seconds"},
		{"renewing at half the TTL", Timings{TTL: 4 * time.Second, Renew: 2 * time.Second, Margin: time.Second, Poll: time.Second}, "renew interval"},
		{"never renewing", Timings{TTL: 4 * time.Second, Renew: 0, Margin: time.Second, Poll: time.Second}, "renew interval"},
		{"no margin", Timings{TTL: 4 * time.Second, Renew: time.Second, Poll: time.Second}, "margin"},
		{"a margin that leaves no renewal", Timings{TTL: 4 * time.Second, Renew: time.Second, Margin: 3 * time.Second, Poll: time.Second}, "margin"},
		{"no poll", Timings{TTL: 4 * time.Second, Renew: time.Second, Margin: time.Second}, "poll"},
	}
	for _, tt := range tests {
		err := tt.t.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error about %s", tt.name, err, tt.want)
		}
	}
}

func TestAHolderStopsWritingAMarginBeforeTheKeyMayVanish(t *testing.T) {
	tm := For(10 * time.Second) // renew 2.5s, margin 2.5s
	renewed := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		after time.Duration // since the last renewal was sent
		holds bool
	}{
		{0, true},
		{2500 * time.Millisecond, true},
		{7499 * time.Millisecond, true},
		{7500 * time.Millisecond, false}, // TTL - margin
		{10 * time.Second, false},        // the key may be gone
		{time.Minute, false},
	}
	for _, tt := range tests {
		if got := tm.Holds(renewed.Add(tt.after), renewed); got != tt.holds {
			t.Errorf("%s after the last renewal: holds %v, want %v", tt.after, got, tt.holds)
		}
	}
}

func TestTheNextRenewalComesSoonerAfterAFailureAndNeverPastTheDeadline(t *testing.T) {
	tm := For(10 * time.Second) // renew 2.5s, margin 2.5s, poll 1s
	renewed := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		after  time.Duration
		failed bool
		want   time.Duration
	}{
		{"just renewed", 0, false, 2500 * time.Millisecond},
		{"a renewal failed", 2500 * time.Millisecond, true, time.Second},
		{"the deadline is near", 7 * time.Second, true, 500 * time.Millisecond},
		{"the deadline has passed", 8 * time.Second, true, 0},
	}
	for _, tt := range tests {
		if got := tm.NextRenewal(renewed.Add(tt.after), renewed, tt.failed); got != tt.want {
			t.Errorf("%s: next renewal in %s, want %s", tt.name, got, tt.want)
		}
	}
}
