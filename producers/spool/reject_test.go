package spool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/events/eventstest"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// readRejected returns the lines of dir's rejected file, none when it does
// not exist.
func readRejected(t *testing.T, dir string) []Rejection {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, RejectedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Rejection
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r Rejection
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("rejected file line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// checkRejected checks that dir's rejected file holds ev alone, as spooled,
// with a reason that says why.
func checkRejected(t *testing.T, dir string, ev events.Event, reason string) {
	t.Helper()
	rej := readRejected(t, dir)
	if len(rej) != 1 {
		t.Fatalf("rejected file holds %d lines, want 1: %+v", len(rej), rej)
	}
	want, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := rej[0]
	if r.EventID != ev.EventID || r.Subject != ev.Subject() || !bytes.Equal(r.Event, want) || r.At.IsZero() {
		t.Errorf("rejected line %+v, want event %s on %s as spooled: %s", r, ev.EventID, ev.Subject(), want)
	}
	if !strings.Contains(r.Reason, reason) {
		t.Errorf("rejected for %q, want a reason saying %q", r.Reason, reason)
	}
}

func without(evs []events.Event, i int) []events.Event {
	return slices.Delete(slices.Clone(evs), i, i+1)
}

func TestAnEventOverTheStreamsMessageSizeIsMovedToTheRejectedFileAndTheRestDelivered(t *testing.T) {
	dir := t.TempDir()
	nc := connect(t, startBroker(t, -1).URL())
	evs := eventstest.Activations("large", 20)
	// Over IKD_EVENTS' 8 KiB per message, within what the spool records.
	evs[7].OfficeID = strings.Repeat("x", 9000)
	s := open(t, dir, 1<<20)
	defer closeSpool(t, s)
	appendAll(t, s, evs)

	r := run(t, s, nc)
	waitDrained(t, s)
	r.stop(t)

	if got, want := streamIDs(t, jetStream(t, nc)), ids(without(evs, 7)); !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want every other event in order: %v", got, want)
	}
	checkRejected(t, dir, evs[7], "message size exceeds maximum")
	if st := s.Stats(); st.SetAside != 1 || st.LastSetAside == nil || st.LastSetAside.EventID != evs[7].EventID || st.WaitingEvents != 0 || st.Forwarded != 19 {
		t.Errorf("stats %+v; want the event set aside and shown, the other 19 forwarded", st)
	}
}

func TestAnEventWhoseSubjectNoStreamTakesIsMovedToTheRejectedFileAndTheRestDelivered(t *testing.T) {
	dir := t.TempDir()
	nc := connect(t, startBroker(t, -1).URL())
	js := jetStream(t, nc)
	cfg := broker.Streams(broker.StreamOptions{})[0]
	cfg.Subjects = []string{events.SubjectFilter(events.TypeActivation, "")}
	if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatalf("narrow the events stream to activations: %v", err)
	}
	evs := eventstest.Activations("nostream", 20)
	evs[3].Type = events.TypeEnrolment
	s := open(t, dir, 1<<20)
	defer closeSpool(t, s)
	appendAll(t, s, evs)

	r := run(t, s, nc)
	waitDrained(t, s)
	r.stop(t)

	if got, want := streamIDs(t, js), ids(without(evs, 3)); !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want every other event in order: %v", got, want)
	}
	checkRejected(t, dir, evs[3], "no response from stream")
}

func TestEventsWaitForStreamsNotYetCreatedInsteadOfBeingRejected(t *testing.T) {
	dir := t.TempDir()
	nc := testenv.Connect(t, testenv.Broker(t).URL())
	evs := eventstest.Activations("early", 10)
	s := open(t, dir, 1<<20)
	defer closeSpool(t, s)
	appendAll(t, s, evs)
	pending := s.Pending()

	r := run(t, s, nc)
	// Longer than the publisher retries, so that Run has seen it give up.
	time.Sleep(1500 * time.Millisecond)
	if s.Pending() != pending || readRejected(t, dir) != nil {
		t.Fatalf("before the streams exist: %d bytes pending of %d, rejected %+v; want all kept",
			s.Pending(), pending, readRejected(t, dir))
	}
	// Stopped meanwhile: streams created in the middle of a Publish would let
	// the publisher's window store the events out of order.
	r.stop(t)
	js := testenv.Provision(t, nc, broker.StreamOptions{})
	r = run(t, s, nc)
	waitDrained(t, s)
	r.stop(t)

	if got := streamIDs(t, js); !slices.Equal(got, ids(evs)) {
		t.Errorf("stream holds %v, want %v", got, ids(evs))
	}
}

// syncSender publishes one event at a time and stops at the first error,
// which names no event: a Sender simpler than *publish.Publisher.
type syncSender struct{ js jetstream.JetStream }

func (p syncSender) Publish(ctx context.Context, evs []events.Event) (publish.Result, error) {
	var res publish.Result
	for _, ev := range evs {
		data, err := ev.Marshal()
		if err != nil {
			return res, err
		}
		if _, err := p.js.Publish(ctx, ev.Subject(), data, jetstream.WithMsgID(ev.EventID)); err != nil {
			return res, fmt.Errorf("publish: %w", err)
		}
		res.Published++
	}
	return res, nil
}

func TestARefusalThatNamesNoEventIsNarrowedDownToTheEventItConcerns(t *testing.T) {
	dir := t.TempDir()
	nc := connect(t, startBroker(t, -1).URL())
	js := jetStream(t, nc)
	evs := eventstest.Activations("narrowed", 40)
	evs[25].OfficeID = strings.Repeat("x", 9000)
	s := open(t, dir, 1<<20)
	defer closeSpool(t, s)
	appendAll(t, s, evs)

	r := runSender(t, s, syncSender{js})
	waitDrained(t, s)
	r.stop(t)

	if got, want := streamIDs(t, js), ids(without(evs, 25)); !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want every other event in order: %v", got, want)
	}
	checkRejected(t, dir, evs[25], "message size exceeds maximum")
}

// countingSender counts the calls to a Sender.
type countingSender struct {
	Sender
	calls atomic.Int32
}

func (c *countingSender) Publish(ctx context.Context, evs []events.Event) (publish.Result, error) {
	c.calls.Add(1)
	return c.Sender.Publish(ctx, evs)
}

// logRecorder keeps a logger's records as JSON objects.
type logRecorder struct{ testenv.LogBuffer }

// records returns the records whose message starts with msg.
func (l *logRecorder) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := rec[slog.MessageKey].(string); strings.HasPrefix(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

func TestAnOutageIsLoggedWhenItStartsAndWhenItEndsNotAtEveryAttempt(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	nc := connect(t, fmt.Sprintf("nats://127.0.0.1:%d", port))
	var logs logRecorder
	s, err := Open(dir, 1<<20, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer closeSpool(t, s)
	evs := eventstest.Activations("outage", 10)
	appendAll(t, s, evs)

	p, err := publish.New(nc, publish.Options{RetryFor: time.Second, Ordered: true}, testLogger(t))
	if err != nil {
		t.Fatalf("publish.New: %v", err)
	}
	sender := &countingSender{Sender: p}
	r := runSender(t, s, sender)
	for deadline := time.Now().Add(30 * time.Second); sender.calls.Load() < 4; {
		if time.Now().After(deadline) {
			t.Fatalf("Run tried %d times in 30s, want 4", sender.calls.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	startBroker(t, port)
	waitDrained(t, s)
	r.stop(t)

	var loud []string
	for _, rec := range logs.records(t, "") {
		if rec[slog.LevelKey] != "DEBUG" && rec[slog.LevelKey] != "INFO" {
			loud = append(loud, fmt.Sprint(rec[slog.MessageKey]))
		}
	}
	if len(loud) != 1 || !strings.HasPrefix(loud[0], "cannot forward spooled events") {
		t.Errorf("warnings and errors logged: %q, want one when the outage starts", loud)
	}
	ends := logs.records(t, "forwarding spooled events again")
	if len(ends) != 1 {
		t.Fatalf("%d records of the outage's end, want 1:\n%s", len(ends), logs.String())
	}
	// Every call but the last, which delivered the lot, failed.
	if n, _ := ends[0]["failed_attempts"].(float64); int32(n) != sender.calls.Load()-1 {
		t.Errorf("outage's end logged with %v failed attempts, want %d: %v", ends[0]["failed_attempts"], sender.calls.Load()-1, ends[0])
	}
	if got := streamIDs(t, jetStream(t, nc)); !slices.Equal(got, ids(evs)) {
		t.Errorf("stream holds %v, want %v", got, ids(evs))
	}
}

func TestPublishFailuresAreRetriedOnlyWhenTheLinkIsAtFault(t *testing.T) {
	evs := eventstest.Activations("judge", 3)
	failedAt := func(first int, errs ...error) error {
		pe := &publish.Error{Total: len(evs)}
		for i, err := range errs {
			pe.Failures = append(pe.Failures, publish.Failure{EventID: evs[first+i].EventID, Err: err})
		}
		return pe
	}
	failed := func(errs ...error) error { return failedAt(0, errs...) }
	api := func(code, errCode int) error {
		return fmt.Errorf("ack: %w", &jetstream.APIError{Code: code, ErrorCode: jetstream.ErrorCode(errCode)})
	}
	disconnected := fmt.Errorf("send: %w: connection to NATS is RECONNECTING", nats.ErrDisconnected)
	noStream := fmt.Errorf("ack: %w", jetstream.ErrNoStreamResponse)
	acked := publish.Result{Published: 2}
	notSent := fmt.Errorf("%w %s (%v)", publish.ErrNotSent, evs[1].EventID, disconnected)
	tests := []struct {
		name    string
		evs     int
		res     publish.Result
		err     error
		retry   bool
		split   bool
		refused []string // event ids
		settled int      // leading events the cursor may pass
	}{
		{name: "all acknowledged", evs: 3, settled: 3},
		{name: "broker disconnected", evs: 3, err: failed(disconnected, disconnected, disconnected), retry: true},
		{name: "ack timed out", evs: 3, err: failed(fmt.Errorf("ack: %w", jetstream.ErrAsyncPublishTimeout)), retry: true},
		{name: "no stream answers and none acknowledged: streams not up yet", evs: 3, err: failed(noStream, noStream, noStream), retry: true},
		{name: "no stream answers while others were acknowledged: no stream takes the subject", evs: 3, res: acked, err: failed(noStream), refused: []string{evs[0].EventID}, settled: 3},
		{name: "JetStream unavailable (503)", evs: 3, err: failed(api(503, 10008)), retry: true},
		{name: "broker out of resources (503)", evs: 3, res: acked, err: failed(api(503, 10023)), retry: true},
		{name: "too many requests (429)", evs: 3, err: failed(api(429, 10000)), retry: true},
		{name: "over the stream's message size (400)", evs: 3, res: acked, err: failed(api(400, 10054)), refused: []string{evs[0].EventID}, settled: 3},
		{name: "over the connection's max payload", evs: 3, err: failed(fmt.Errorf("send: %w", nats.ErrMaxPayload)), refused: []string{evs[0].EventID}, settled: 3},
		{name: "an error nobody foresaw", evs: 3, err: failed(errors.New("nats: something new")), refused: []string{evs[0].EventID}, settled: 3},
		{name: "a refusal, then an outage: the cursor passes the refusal", evs: 3, err: failed(api(400, 10054), disconnected), retry: true, refused: []string{evs[0].EventID}, settled: 1},
		{name: "ordered: a refusal, an outage, then held back", evs: 3, err: failed(api(400, 10054), disconnected, notSent), retry: true, refused: []string{evs[0].EventID}, settled: 1},
		{name: "ordered: acknowledged, then no stream takes one, then held back", evs: 3, res: publish.Result{Published: 1}, err: failedAt(1, noStream, notSent), refused: []string{evs[1].EventID}, retry: true, settled: 2},
		{name: "call failed on the link", evs: 3, err: fmt.Errorf("publish: %w", nats.ErrTimeout), retry: true},
		{name: "call refused with several events: narrow the batch", evs: 3, err: fmt.Errorf("publish: %w", nats.ErrBadSubject), split: true},
		{name: "call refused with one event: that event", evs: 1, err: fmt.Errorf("publish: %w", nats.ErrBadSubject), refused: []string{evs[0].EventID}, settled: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := judge(evs[:tt.evs], tt.res, tt.err)
			refused := slices.Sorted(maps.Keys(o.refused))
			if (o.retry != nil) != tt.retry || o.split != tt.split || !slices.Equal(refused, tt.refused) || o.settled != tt.settled {
				t.Errorf("judge = retry %v, split %v, refused %v, settled %d; want retry %v, split %v, refused %v, settled %d",
					o.retry, o.split, refused, o.settled, tt.retry, tt.split, tt.refused, tt.settled)
			}
		})
	}
}
