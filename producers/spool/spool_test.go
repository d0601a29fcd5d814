package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/events/eventstest"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func ids(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventID
	}
	return out
}

func open(t *testing.T, dir string, maxBytes int64) *Spool {
	t.Helper()
	s, err := Open(dir, maxBytes, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func appendAll(t *testing.T, s *Spool, evs []events.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := s.Append(ev); err != nil {
			t.Fatalf("Append %s: %v", ev.EventID, err)
		}
	}
}

func closeSpool(t *testing.T, s *Spool) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// startBroker starts a broker with the project's streams on port (-1: any
// free port).
func startBroker(t *testing.T, port int) *embeddedbroker.Broker {
	t.Helper()
	e := testenv.BrokerAt(t, testenv.StoreDir(t), port)
	testenv.JetStream(t, e.URL())
	return e
}

// connect dials url as a counter and keeps trying, as a counter does whose
// broker is not up yet.
func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	auth, err := testenv.Auth(broker.RoleCounter).Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(auth, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// jetStream is the admin's view of the broker nc is connected to, for
// looking at and changing streams, which a counter may not do.
func jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, nc.ConnectedUrl()))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

// running is a spool's Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func run(t *testing.T, s *Spool, nc *nats.Conn) *running {
	t.Helper()
	p, err := publish.New(nc, publish.Options{RetryFor: time.Second, Ordered: true}, testLogger(t))
	if err != nil {
		t.Fatalf("publish.New: %v", err)
	}
	return runSender(t, s, p)
}

func runSender(t *testing.T, s *Spool, p Sender) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, p) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and checks that it ended only because it was told to.
func (r *running) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func waitDrained(t *testing.T, s *Spool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d bytes after 30s", s.Pending())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamIDs returns the Nats-Msg-Id of every message in the events stream,
// in stream order.
func streamIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var out []string
	for _, msg := range testenv.StreamMessages(t, js, broker.EventsStream) {
		out = append(out, msg.Header.Get(jetstream.MsgIDHeader))
	}
	return out
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestEventsSpooledWithoutABrokerAreDeliveredInOrderOnceItStarts(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	nc := connect(t, fmt.Sprintf("nats://127.0.0.1:%d", port))
	// Small segments, so that delivery crosses several of them.
	s := open(t, dir, 1<<20)
	defer closeSpool(t, s)
	r := run(t, s, nc)
	evs := eventstest.Activations("offline", 2000)
	appendAll(t, s, evs)
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segment files, want several", n)
	}

	time.Sleep(300 * time.Millisecond) // Run tries, and fails, meanwhile.
	startBroker(t, port)
	waitDrained(t, s)
	r.stop(t)

	if got := streamIDs(t, jetStream(t, nc)); !slices.Equal(got, ids(evs)) {
		t.Errorf("stream holds %d events, want the %d spooled in append order", len(got), len(evs))
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Errorf("%d segment files after delivery, want only the last", n)
	}
	if rej := readRejected(t, dir); rej != nil {
		t.Errorf("an outage moved events to the rejected file: %+v", rej)
	}
}

func TestReopenedSpoolDeliversWhatWasLeftAndNothingTwice(t *testing.T) {
	dir := t.TempDir()
	nc := connect(t, startBroker(t, -1).URL())
	evs := eventstest.Activations("restart", 300)

	s := open(t, dir, 1<<20)
	appendAll(t, s, evs[:100])
	r := run(t, s, nc)
	waitDrained(t, s)
	r.stop(t)
	appendAll(t, s, evs[100:])
	left := s.Pending()
	closeSpool(t, s)

	s = open(t, dir, 1<<20)
	defer closeSpool(t, s)
	if s.Pending() != left {
		t.Fatalf("reopened spool holds %d bytes, want the %d undelivered", s.Pending(), left)
	}
	r = run(t, s, nc)
	waitDrained(t, s)
	r.stop(t)
	if got := streamIDs(t, jetStream(t, nc)); !slices.Equal(got, ids(evs)) {
		t.Errorf("stream holds %d events, want the %d appended, in order", len(got), len(evs))
	}
}

func TestFullSpoolRefusesNewEventsAndKeepsOldOnes(t *testing.T) {
	dir := t.TempDir()
	const limit = 8 << 10
	s := open(t, dir, limit)
	evs := eventstest.Activations("full", 100)
	var kept int
	var err error
	for _, ev := range evs {
		if err = s.Append(ev); err != nil {
			break
		}
		kept++
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append past the limit: %v, want ErrFull", err)
	}
	for _, want := range []string{dir, "8192"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if kept == 0 || s.Pending() > limit {
		t.Fatalf("kept %d events in %d bytes, want some within %d", kept, s.Pending(), limit)
	}
	closeSpool(t, s)

	s = open(t, dir, limit)
	defer closeSpool(t, s)
	if err := s.Append(evs[kept]); !errors.Is(err, ErrFull) {
		t.Errorf("Append to the reopened full spool: %v, want ErrFull", err)
	}
	nc := connect(t, startBroker(t, -1).URL())
	r := run(t, s, nc)
	waitDrained(t, s)
	if err := s.Append(evs[kept]); err != nil {
		t.Errorf("Append once drained: %v", err)
	}
	waitDrained(t, s)
	r.stop(t)
	if got := streamIDs(t, jetStream(t, nc)); !slices.Equal(got, ids(evs[:kept+1])) {
		t.Errorf("stream holds %v, want the %d oldest events in order", got, kept+1)
	}
}

func TestOpenCutsATornTailAndKeepsWhatPrecedesIt(t *testing.T) {
	tests := []struct {
		name string
		tear func(t *testing.T, path string, lastRecord int64)
		keep int // of the 10 appended
	}{
		{"header cut short", func(t *testing.T, path string, _ int64) { appendBytes(t, path, []byte{0x20, 0x01}) }, 10},
		{"payload cut short", func(t *testing.T, path string, _ int64) {
			appendBytes(t, path, []byte{0x20, 0x01, 0, 0, 1, 2, 3, 4, '{', '"'})
		}, 10},
		{"last record's checksum fails", func(t *testing.T, path string, lastRecord int64) {
			flipByte(t, path, lastRecord+headerBytes+5)
		}, 9},
		{"absurd length", func(t *testing.T, path string, _ int64) {
			appendBytes(t, path, []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			evs := eventstest.Activations("torn", 11)
			s := open(t, dir, 1<<20)
			appendAll(t, s, evs[:9])
			lastRecord := s.Pending()
			appendAll(t, s, evs[9:10])
			wantPending := map[int]int64{9: lastRecord, 10: s.Pending()}[tt.keep]
			closeSpool(t, s)
			files := segmentFiles(t, dir)
			tt.tear(t, files[len(files)-1], lastRecord)

			s = open(t, dir, 1<<20)
			defer closeSpool(t, s)
			if s.Pending() != wantPending {
				t.Errorf("spool holds %d bytes after the cut, want %d", s.Pending(), wantPending)
			}
			// What is appended after the cut must be readable too.
			appendAll(t, s, evs[10:])
			want := append(evs[:tt.keep:tt.keep], evs[10])
			nc := connect(t, startBroker(t, -1).URL())
			r := run(t, s, nc)
			waitDrained(t, s)
			r.stop(t)
			if got := streamIDs(t, jetStream(t, nc)); !slices.Equal(got, ids(want)) {
				t.Errorf("stream holds %v, want %v", got, ids(want))
			}
		})
	}
}

func TestDamageBeforeTheLastSegmentIsAnErrorNotACut(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 32<<10) // 4 KiB segments
	appendAll(t, s, eventstest.Activations("damaged", 40))
	closeSpool(t, s)
	files := segmentFiles(t, dir)
	if len(files) < 2 {
		t.Fatalf("%d segment files, want several", len(files))
	}
	flipByte(t, files[0], headerBytes+5)

	_, err := Open(dir, 32<<10, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), files[0]) {
		t.Fatalf("Open of a damaged spool: %v, want an error naming %s", err, files[0])
	}
}

func TestASecondOpenOfTheSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	defer closeSpool(t, s)
	if _, err := Open(dir, 1<<20, testLogger(t)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want an in-use error", err)
	}
}

func TestConcurrentAppendsAreAllDelivered(t *testing.T) {
	const writers, each = 8, 250
	s := open(t, t.TempDir(), 4<<20)
	defer closeSpool(t, s)
	nc := connect(t, startBroker(t, -1).URL())
	r := run(t, s, nc)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for _, ev := range eventstest.Activations(fmt.Sprintf("writer%d", w), each) {
				if err := s.Append(ev); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitDrained(t, s)
	r.stop(t)
	got := streamIDs(t, jetStream(t, nc))
	if len(got) != writers*each {
		t.Fatalf("stream holds %d events, want %d", len(got), writers*each)
	}
	// Each writer's events keep their order.
	last := map[string]string{}
	for _, id := range got {
		writer, _, _ := strings.Cut(id, "-")
		if id <= last[writer] {
			t.Fatalf("%s delivered after %s", id, last[writer])
		}
		last[writer] = id
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestStatsCountWaitingEventsAcrossAReopenAndAppendAllStopsAtTheLimit(t *testing.T) {
	dir := t.TempDir()
	evs := eventstest.Activations("st", 5)
	received := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range evs {
		evs[i].ReceivedAt = received.Add(time.Duration(i) * time.Second)
	}
	rec, err := encode(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Room for three records: the fourth is refused and the three are kept.
	s := open(t, dir, int64(3*len(rec)+len(rec)/2))
	n, err := s.AppendAll(evs)
	if n != 3 || !errors.Is(err, ErrFull) {
		t.Fatalf("AppendAll = %d, %v; want 3 and ErrFull", n, err)
	}
	closeSpool(t, s)

	s = open(t, dir, 1<<20)
	defer closeSpool(t, s)
	st := s.Stats()
	if st.WaitingEvents != 3 || st.WaitingBytes != int64(3*len(rec)) || st.Link != LinkUnknown {
		t.Fatalf("after reopen: %+v; want 3 events waiting, %d bytes, link unknown", st, 3*len(rec))
	}
	b, err := newForwarder(s, nil).read()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.evs) != 3 || !b.evs[2].ReceivedAt.Equal(evs[2].ReceivedAt) {
		t.Fatalf("read back %d events, the third received at %v; want 3, %v", len(b.evs), b.evs[2].ReceivedAt, evs[2].ReceivedAt)
	}
}
