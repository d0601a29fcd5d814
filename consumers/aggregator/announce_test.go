package aggregator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func TestWrittenBatchIsAnnouncedOnChanges(t *testing.T) {
	p := start(t)
	ctx := context.Background()
	at := time.Date(2023, 2, 13, 2, 0, 0, 0, time.UTC).Format(time.RFC3339)
	p.publish(t,
		line("activation", p.residentOf(t, "17.71", 1), "1771-OFF-01", at),
		line("activation", p.residentOf(t, "17.71", 2), "1771-OFF-01", at),
		line("enrolment", p.residentOf(t, "18.71", 1), "1871-OFF-01", at),
	)
	p.settle(t)
	cons, err := p.js.OrderedConsumer(ctx, contract.ChangesStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{contract.ChangesSubject}})
	if err != nil {
		t.Fatal(err)
	}
	var cities []string
	events := 0
	testenv.Eventually(t, time.Minute, func() error {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("%d events announced so far: %w", events, err)
		}
		var a contract.Announcement
		if err := json.Unmarshal(msg.Data(), &a); err != nil {
			t.Fatalf("announcement %s: %v", msg.Data(), err)
		}
		if !slices.Equal(a.Years, []int{2023}) || a.At.IsZero() || a.Events == 0 {
			t.Errorf("announcement: %s", msg.Data())
		}
		for _, c := range a.Cities {
			if !slices.Contains(cities, c) {
				cities = append(cities, c)
			}
		}
		if events += a.Events; events < 3 {
			return fmt.Errorf("%d events announced so far", events)
		}
		return nil
	})
	slices.Sort(cities)
	if events != 3 || !slices.Equal(cities, []string{"17.71", "18.71"}) {
		t.Fatalf("announced %d events in %v, want 3 in [17.71 18.71]", events, cities)
	}
}
