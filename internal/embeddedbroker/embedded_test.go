package embeddedbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// testCreds are the users of every broker these tests start.
var testCreds = func() Credentials {
	c, err := NewCredentials()
	if err != nil {
		panic(err)
	}
	return c
}()

// admin is how the tests connect: as the admin, who may do anything.
var admin = testCreds.Auth(broker.RoleAdmin)

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startBroker runs an embedded broker on a free port in dir and stops it when the test ends.
func startBroker(t *testing.T, dir string) *Broker {
	t.Helper()
	e, err := Start(Config{Dir: dir, Port: -1, Logger: testLogger(t), Users: testCreds.Users()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func connectJS(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := broker.Connect(url, "broker-test", admin, testLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return nc, js
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProvisionIsIdempotent(t *testing.T) {
	ctx := testContext(t)
	e := startBroker(t, t.TempDir())
	_, js := connectJS(t, e.URL())

	for i := range 2 {
		if err := broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{})...); err != nil {
			t.Fatalf("broker.Provision #%d: %v", i+1, err)
		}
	}

	want := map[string]string{
		broker.EventsStream:     "ikd.v1.>",
		broker.DeadLetterStream: "ikd.deadletter.v1.>",
		broker.ChangesStream:    "ikd.changes.v1.>",
		broker.AlertsStream:     "ikd.alerts.v1.>",
	}
	var got []string
	for name := range js.StreamNames(ctx).Name() {
		got = append(got, name)
	}
	if len(got) != len(want) {
		t.Fatalf("stream names = %v, want the %d project streams", got, len(want))
	}
	for name, subject := range want {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		cfg := s.CachedInfo().Config
		if !slices.Equal(cfg.Subjects, []string{subject}) {
			t.Errorf("stream %s subjects = %v, want [%s]", name, cfg.Subjects, subject)
		}
		if cfg.Storage != jetstream.FileStorage {
			t.Errorf("stream %s storage = %v, want file", name, cfg.Storage)
		}
	}

	events, err := js.Stream(ctx, broker.EventsStream)
	if err != nil {
		t.Fatalf("stream %s: %v", broker.EventsStream, err)
	}
	if d := events.CachedInfo().Config.Duplicates; d != 10*time.Minute {
		t.Errorf("default duplicate window = %s, want 10m", d)
	}

	if err := broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{DuplicateWindow: 3 * time.Minute})...); err != nil {
		t.Fatalf("broker.Provision with new duplicate window: %v", err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if d := info.Config.Duplicates; d != 3*time.Minute {
		t.Errorf("duplicate window after update = %s, want 3m", d)
	}
}

func TestMessagesSurviveRestartOnSameDirectory(t *testing.T) {
	const n = 1000
	const durable = "restart-test"
	ctx := testContext(t)
	dir := t.TempDir()

	first, err := Start(Config{Dir: dir, Port: -1, Logger: testLogger(t), Users: testCreds.Users()})
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	t.Cleanup(first.Shutdown)
	nc, err := broker.Connect(first.URL(), "publisher", admin, testLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if err := broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{})...); err != nil {
		t.Fatalf("broker.Provision: %v", err)
	}
	payload := func(i int) string { return fmt.Sprintf(`{"seq":%d,"count":%d}`, i, i*3) }
	for i := range n {
		subject := fmt.Sprintf("ikd.v1.activation.%d.%d", i%50, i)
		if _, err := js.Publish(ctx, subject, []byte(payload(i)), jetstream.WithMsgID("msg-"+strconv.Itoa(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	nc.Close()
	first.Shutdown()

	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatalf("store dir: %v", err)
	}

	second := startBroker(t, dir)
	_, js = connectJS(t, second.URL())
	stream, err := js.Stream(ctx, broker.EventsStream)
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d messages after restart, want %d", info.State.Msgs, n)
	}

	cons, err := js.CreateOrUpdateConsumer(ctx, broker.EventsStream, jetstream.ConsumerConfig{
		Durable:   durable,
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create durable consumer: %v", err)
	}
	seen := make(map[string]bool, n)
	for len(seen) < n {
		batch, err := cons.Fetch(200, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			id := msg.Headers().Get(jetstream.MsgIDHeader)
			i, err := strconv.Atoi(strings.TrimPrefix(id, "msg-"))
			if err != nil {
				t.Fatalf("message %q has unexpected Nats-Msg-Id %q", msg.Subject(), id)
			}
			if string(msg.Data()) != payload(i) {
				t.Fatalf("message %s payload = %q, want %q", id, msg.Data(), payload(i))
			}
			if want := fmt.Sprintf("ikd.v1.activation.%d.%d", i%50, i); msg.Subject() != want {
				t.Fatalf("message %s subject = %q, want %q", id, msg.Subject(), want)
			}
			seen[id] = true
			if err := msg.Ack(); err != nil {
				t.Fatalf("ack %s: %v", id, err)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch batch: %v", err)
		}
		if got == 0 {
			t.Fatalf("fetch returned nothing after %d of %d messages", len(seen), n)
		}
	}
}

func TestDuplicatePublishWithinWindowIsStoredOnce(t *testing.T) {
	ctx := testContext(t)
	e := startBroker(t, t.TempDir())
	_, js := connectJS(t, e.URL())
	if err := broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{})...); err != nil {
		t.Fatalf("broker.Provision: %v", err)
	}

	const subject = "ikd.v1.activation.17.71"
	first, err := js.Publish(ctx, subject, []byte("one"), jetstream.WithMsgID("activation-17-71"))
	if err != nil {
		t.Fatalf("first publish: %v", err)
	}
	if first.Duplicate {
		t.Errorf("first publish reported as duplicate")
	}
	second, err := js.Publish(ctx, subject, []byte("one"), jetstream.WithMsgID("activation-17-71"))
	if err != nil {
		t.Fatalf("second publish: %v", err)
	}
	if !second.Duplicate {
		t.Errorf("second publish with the same msg id: Duplicate = false, want true")
	}
	if second.Sequence != first.Sequence {
		t.Errorf("duplicate ack sequence = %d, want the original %d", second.Sequence, first.Sequence)
	}

	stream, err := js.Stream(ctx, broker.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
}

func TestOversizedEventIsRejected(t *testing.T) {
	ctx := testContext(t)
	e := startBroker(t, t.TempDir())
	_, js := connectJS(t, e.URL())
	if err := broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{})...); err != nil {
		t.Fatalf("broker.Provision: %v", err)
	}

	if _, err := js.Publish(ctx, "ikd.v1.activation.1.1", make([]byte, 4*1024)); err != nil {
		t.Fatalf("4KiB event should be accepted: %v", err)
	}
	if _, err := js.Publish(ctx, "ikd.v1.activation.1.2", make([]byte, 64*1024)); err == nil {
		t.Fatalf("64KiB event was accepted, want rejection by MaxMsgSize")
	}
}

func TestAFullEventOrDeadLetterStreamRefusesRatherThanDropsWhatItHolds(t *testing.T) {
	ctx := testContext(t)
	e := startBroker(t, t.TempDir())
	_, js := connectJS(t, e.URL())
	for _, cfg := range broker.Streams(broker.StreamOptions{}) {
		if cfg.Name != broker.EventsStream && cfg.Name != broker.DeadLetterStream {
			continue
		}
		t.Run(cfg.Name, func(t *testing.T) {
			// broker.Streams of earlier versions dropped the oldest; provisioning updates them.
			old := cfg
			old.Discard = jetstream.DiscardOld
			if err := broker.Provision(ctx, js, old); err != nil {
				t.Fatalf("broker.Provision: %v", err)
			}
			cfg.MaxMsgs = 1 // a limit an operator might set
			if err := broker.Provision(ctx, js, cfg); err != nil {
				t.Fatalf("broker.Provision: %v", err)
			}
			subject := strings.TrimSuffix(cfg.Subjects[0], ">") + "x"
			first, err := js.Publish(ctx, subject, []byte("first"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, subject, []byte("second")); err == nil {
				t.Error("a full stream accepted a message")
			}
			stream, err := js.Stream(ctx, cfg.Name)
			if err != nil {
				t.Fatal(err)
			}
			if msg, err := stream.GetMsg(ctx, first.Sequence); err != nil || string(msg.Data) != "first" {
				t.Errorf("the message it held is gone: %v", err)
			}
		})
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return port
}

func TestConnectToNothingSaysHowToStartABroker(t *testing.T) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))

	start := time.Now()
	nc, err := broker.Connect(url, "broker-test", admin, testLogger(t))
	elapsed := time.Since(start)
	if err == nil {
		nc.Close()
		t.Fatalf("Connect to %s succeeded, want an error", url)
	}
	for _, want := range []string{url, "IKD_NATS_URL", "bin/ikd-dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("error %q does not wrap nats.ErrNoServers", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Connect took %s to fail, want a fast failure", elapsed)
	}
}

func TestPortInUseIsAClearError(t *testing.T) {
	running := startBroker(t, t.TempDir())
	port, err := strconv.Atoi(running.URL()[strings.LastIndex(running.URL(), ":")+1:])
	if err != nil {
		t.Fatalf("port from %s: %v", running.URL(), err)
	}

	start := time.Now()
	e, err := Start(Config{Dir: t.TempDir(), Port: port, Logger: testLogger(t), Users: testCreds.Users()})
	elapsed := time.Since(start)
	if err == nil {
		e.Shutdown()
		t.Fatalf("second broker on port %d started, want an error", port)
	}
	want := fmt.Sprintf("listen 127.0.0.1:%d: address already in use — is another ikd-dev running?", port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q does not wrap EADDRINUSE", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Start took %s to fail, want a fast failure", elapsed)
	}

	// The running broker is unaffected.
	nc, err := broker.Connect(running.URL(), "broker-test", admin, testLogger(t))
	if err != nil {
		t.Fatalf("connect to the running broker: %v", err)
	}
	nc.Close()
}

// The probe in Start can lose a race with another process; the server's
// own listen failure must then still be a clear error rather than an exit.
func TestPortTakenAfterTheProbeIsStillAClearError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	start := time.Now()
	opts, err := options(Config{Dir: t.TempDir(), Host: "127.0.0.1", Port: port, Users: testCreds.Users()})
	if err != nil {
		t.Fatal(err)
	}
	e, err := startServer(opts, testLogger(t))
	elapsed := time.Since(start)
	if err == nil {
		e.Shutdown()
		t.Fatalf("server started on taken port %d, want an error", port)
	}
	want := fmt.Sprintf("listen 127.0.0.1:%d: address already in use — is another ikd-dev running?", port)
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q does not wrap EADDRINUSE", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("startServer took %s to fail, want a fast failure", elapsed)
	}
}

func TestShutdownTwiceIsHarmless(t *testing.T) {
	e, err := Start(Config{Dir: t.TempDir(), Port: -1, Logger: testLogger(t), Users: testCreds.Users()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.Shutdown()
	e.Shutdown()
}

func TestClientReconnectsWhenBrokerRestartsOnSamePort(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	port := freePort(t)

	first, err := Start(Config{Dir: dir, Port: port, Logger: testLogger(t), Users: testCreds.Users()})
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	t.Cleanup(first.Shutdown)
	nc, js := connectJS(t, first.URL())
	if err := broker.Provision(ctx, js, broker.Streams(broker.StreamOptions{})...); err != nil {
		t.Fatalf("broker.Provision: %v", err)
	}
	first.Shutdown()

	second, err := Start(Config{Dir: dir, Port: port, Logger: testLogger(t), Users: testCreds.Users()})
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	t.Cleanup(second.Shutdown)

	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatalf("client did not reconnect within 10s (status %v)", nc.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := js.Publish(ctx, "ikd.v1.activation.1.1", []byte("after restart")); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
}

func TestStartWithoutDirIsAnError(t *testing.T) {
	if _, err := Start(Config{Port: -1, Users: testCreds.Users()}); err == nil {
		t.Fatalf("Start without Dir succeeded, want an error")
	}
}
