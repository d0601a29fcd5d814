package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/events/eventstest"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newPublisher(tb testing.TB, nc *nats.Conn, opts Options) *Publisher {
	tb.Helper()
	p, err := New(nc, opts, testLogger(tb))
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return p
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), broker.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func TestPublishStoresEveryEventOnceWithItsIDAsMsgID(t *testing.T) {
	ctx := testContext(t)
	nc, js := testenv.JetStream(t, testenv.Broker(t).URL())
	// One event at a time, in a window smaller than the batch, makes
	// Publish wait for acks midway.
	p := newPublisher(t, nc, Options{MaxPending: 64, Batch: 1})
	evs := eventstest.Activations("once", 1000)

	res, err := p.Publish(ctx, evs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if res != (Result{Published: 1000}) {
		t.Errorf("result = %+v, want 1000 published", res)
	}
	if n := streamMsgs(t, js); n != 1000 {
		t.Errorf("stream holds %d messages, want 1000", n)
	}
	s, err := js.Stream(ctx, broker.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("get first message: %v", err)
	}
	if id := msg.Header.Get(jetstream.MsgIDHeader); id != evs[0].EventID {
		t.Errorf("first message Nats-Msg-Id = %q, want %s", id, evs[0].EventID)
	}
	if want := evs[0].Subject(); msg.Subject != want {
		t.Errorf("first message subject = %q, want %q", msg.Subject, want)
	}
}

func TestPublishingAgainCountsDuplicatesAndStoresNothing(t *testing.T) {
	ctx := testContext(t)
	nc, js := testenv.JetStream(t, testenv.Broker(t).URL())
	p := newPublisher(t, nc, Options{})
	evs := eventstest.Activations("again", 100)
	if _, err := p.Publish(ctx, evs[:60]); err != nil {
		t.Fatalf("first Publish: %v", err)
	}

	res, err := p.Publish(ctx, evs)
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if res != (Result{Published: 40, Duplicates: 60}) {
		t.Errorf("result = %+v, want 40 published and 60 duplicates", res)
	}
	if n := streamMsgs(t, js); n != 100 {
		t.Errorf("stream holds %d messages, want 100", n)
	}
}

func TestPublishResendsUntilTheStreamExists(t *testing.T) {
	ctx := testContext(t)
	nc := testenv.Connect(t, testenv.Broker(t).URL())
	p := newPublisher(t, nc, Options{})
	provisioned := make(chan error, 1)
	go func() {
		// Until then every send finds no stream to answer it.
		time.Sleep(700 * time.Millisecond)
		js, err := jetstream.New(nc)
		if err == nil {
			err = broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{})...)
		}
		provisioned <- err
	}()

	res, err := p.Publish(ctx, eventstest.Activations("late", 50))
	// Publish may return once the events stream exists, before the others do.
	if perr := <-provisioned; perr != nil {
		t.Errorf("provision: %v", perr)
	}
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if res != (Result{Published: 50}) {
		t.Errorf("result = %+v, want 50 published", res)
	}
}

func TestOrderedPublishStoresEventsInTheGivenOrderWhenOneMustBeResent(t *testing.T) {
	ctx := testContext(t)
	nc := testenv.Connect(t, testenv.Broker(t).URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A stream that takes Bengkulu's subjects but, for now, not Lampung's.
	cfg := jetstream.StreamConfig{Name: "ORDER", Subjects: []string{"ikd.v1.activation.17.*"}}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	evs := eventstest.Activations("ordered", 8)
	evs[3].ProvinceCode, evs[3].CityCode, evs[3].DistrictCode = "18", "18.71", "18.71.01"
	go func() {
		time.Sleep(500 * time.Millisecond)
		cfg.Subjects = []string{"ikd.v1.activation.*.*"}
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Errorf("update stream: %v", err)
		}
	}()

	p := newPublisher(t, nc, Options{Ordered: true})
	if _, err := p.Publish(ctx, evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	s, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		msg, err := s.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if id := msg.Header.Get(jetstream.MsgIDHeader); id != ev.EventID {
			t.Errorf("message %d is %s, want %s", i+1, id, ev.EventID)
		}
	}
}

func TestPublishRidesOutABrokerRestart(t *testing.T) {
	const n = 20_000
	ctx := testContext(t)
	dir := testenv.StoreDir(t)
	port := testenv.FreePort(t)
	first := testenv.BrokerAt(t, dir, port)
	nc, js := testenv.JetStream(t, first.URL())
	p := newPublisher(t, nc, Options{})

	done := make(chan error, 1)
	var res Result
	go func() {
		var err error
		res, err = p.Publish(ctx, eventstest.Activations("across", n))
		done <- err
	}()
	// Stop the broker midway, with acks in flight.
	for streamMsgs(t, js) == 0 {
		time.Sleep(time.Millisecond)
	}
	first.Shutdown()
	time.Sleep(300 * time.Millisecond)
	testenv.BrokerAt(t, dir, port)

	if err := <-done; err != nil {
		t.Fatalf("Publish across restart: %v", err)
	}
	if res.Published+res.Duplicates != n {
		t.Errorf("result = %+v, want %d acknowledged", res, n)
	}
	if got := streamMsgs(t, js); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
}

func TestPublishGivesUpAfterRetryForNamingTheEvents(t *testing.T) {
	ctx := testContext(t)
	nc := testenv.Connect(t, testenv.Broker(t).URL())
	p := newPublisher(t, nc, Options{RetryFor: time.Second})

	start := time.Now()
	_, err := p.Publish(ctx, eventstest.Activations("nostream", 3))
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("Publish without a stream: err = %v, want *Error", err)
	}
	if len(perr.Failures) != 3 {
		t.Errorf("%d failures, want 3", len(perr.Failures))
	}
	for _, want := range []string{"3 of 3 events", "event nostream-0", "no response from stream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("gave up after %s, want about RetryFor", elapsed)
	}
}

func TestPublishDoesNotResendWhatTheBrokerRefuses(t *testing.T) {
	tests := []struct {
		name     string
		officeID string
		cause    string
	}{
		{"larger than the stream's MaxMsgSize", strings.Repeat("x", 10_000), "message size exceeds maximum"},
		{"larger than the server's max payload", strings.Repeat("x", 2<<20), "maximum payload exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			nc, js := testenv.JetStream(t, testenv.Broker(t).URL())
			p := newPublisher(t, nc, Options{RetryFor: time.Minute})
			evs := eventstest.Activations("refused", 3)
			evs[1].OfficeID = tt.officeID

			start := time.Now()
			res, err := p.Publish(ctx, evs)
			if err == nil || !strings.Contains(err.Error(), "1 of 3 events not published; event "+evs[1].EventID+": ") || !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("err = %v, want %s named with %q", err, evs[1].EventID, tt.cause)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s, want no resends of a refused event", time.Since(start))
			}
			if res != (Result{Published: 2}) {
				t.Errorf("result = %+v, want the other 2 published", res)
			}
			if n := streamMsgs(t, js); n != 2 {
				t.Errorf("stream holds %d messages, want 2", n)
			}
		})
	}
}

func TestPublishStopsWhenTheContextEnds(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *embeddedbroker.Broker, nc *nats.Conn)
	}{
		{"while no stream answers", func(*testing.T, *embeddedbroker.Broker, *nats.Conn) {}},
		{"while the broker is down", func(t *testing.T, e *embeddedbroker.Broker, nc *nats.Conn) {
			testenv.Provision(t, nc, broker.StreamOptions{})
			e.Shutdown()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testenv.Broker(t)
			nc := testenv.Connect(t, e.URL())
			tt.setup(t, e, nc)
			p := newPublisher(t, nc, Options{})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()

			_, err := p.Publish(ctx, eventstest.Activations("cancelled", 10))
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "event cancelled-0") {
				t.Fatalf("err = %v, want context.DeadlineExceeded naming the events", err)
			}
		})
	}
}

// BenchmarkPublish measures events per second into a file-backed stream on an
// embedded broker that syncs every write, with its store on disk (not in
// memory like the test brokers'), one event at a time and in atomic batches:
//
//	go test -run '^$' -bench Publish -benchtime 20000x ./producers/publish/
func BenchmarkPublish(b *testing.B) {
	for _, batch := range []int{1, 16, defaultBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			e := testenv.BrokerAt(b, b.TempDir(), testenv.FreePort(b))
			nc, _ := testenv.JetStream(b, e.URL())
			p := newPublisher(b, nc, Options{Batch: batch})
			evs := eventstest.Activations(fmt.Sprintf("bench-%d", batch), b.N)
			b.ResetTimer()
			for start := 0; start < len(evs); start += 1000 {
				if _, err := p.Publish(context.Background(), evs[start:min(start+1000, len(evs))]); err != nil {
					b.Fatalf("Publish: %v", err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
