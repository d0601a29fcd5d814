package simulate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestOfficesWhoseLinksDropLoseNoEventAndCountNoneTwice(t *testing.T) {
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	cfg := OfficesConfig{
		Offices: 2, Rate: 200, LinkUp: 300 * time.Millisecond, LinkDown: 400 * time.Millisecond,
		Dir: t.TempDir(), Broker: strings.TrimPrefix(b.URL(), "nats://"), Seed: 7,
		Dial: func(url string) (*nats.Conn, error) {
			return broker.Connect(url, "office", testenv.Auth(broker.RoleCounter), testenv.Quiet)
		},
	}
	offices, err := NewOffices(cfg, testenv.Builder(t), testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- offices.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	heldWhileDown := map[string]bool{}
	waitFor(t, "every office's link dropped and came back, its agent holding events meanwhile", func() bool {
		all := true
		for _, s := range offices.States() {
			if !s.LinkUp && s.Agent.WaitingEvents > 0 {
				heldWhileDown[s.OfficeID] = true
			}
			all = all && s.Drops >= 2 && heldWhileDown[s.OfficeID]
		}
		return all
	})
	offices.Calm()
	waitFor(t, "the agents forward everything", func() bool {
		for _, s := range offices.States() {
			if !s.LinkUp || s.Agent.WaitingEvents > 0 || s.Agent.ForwardedTotal < s.Accepted {
				return false
			}
		}
		return true
	})
	stored := storedByOffice(t, js)
	for _, s := range offices.States() {
		if int64(stored[s.OfficeID]) != s.Accepted || s.Accepted == 0 {
			t.Errorf("%s: the broker holds %d events, its agent accepted %d", s.OfficeID, stored[s.OfficeID], s.Accepted)
		}
	}
}

// storedByOffice counts the events stream's messages by office.
func storedByOffice(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, msg := range testenv.StreamMessages(t, js, broker.EventsStream) {
		var ev events.Event
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatal(err)
		}
		out[ev.OfficeID]++
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, time.Minute, testenv.Holds(what, cond))
}
