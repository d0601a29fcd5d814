package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// nikOf returns the i-th of many valid NIKs of Kota Bengkulu residents.
func nikOf(i int) string {
	return fmt.Sprintf("177101%02d0590%04d", 1+i/9999%28, 1+i%9999)
}

// morning is when the tests' events start: hours ago, so that the thousands
// of them, a second apart, lie in the past.
var morning = time.Now().Add(-3 * time.Hour).Truncate(time.Hour).In(events.WIB)

// inputLine is a counter's input line for resident i at office, i seconds
// after morning; the office may be left to the agent ("").
func inputLine(office string, i int) string {
	at := morning.Add(time.Duration(i) * time.Second)
	officeField := ""
	if office != "" {
		officeField = fmt.Sprintf(`"office_id":%q,`, office)
	}
	return fmt.Sprintf(`{"type":"activation","nik":%q,%s"occurred_at":%q}`, nikOf(i), officeField, at.Format(time.RFC3339))
}

// lines joins input lines from..to-1 as a JSON Lines body.
func lines(office string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(inputLine(office, i))
		b.WriteByte('\n')
	}
	return b.String()
}

// node is one agent running in the test, on its own spool.
type node struct {
	t      *testing.T
	cfg    Config
	spool  *spool.Spool
	agent  *Agent
	base   string // http://127.0.0.1:port
	cancel context.CancelFunc
	done   chan error
}

// startAgent runs an agent for office on dir, forwarding to natsURL.
func startAgent(t *testing.T, office, dir string, limit int64, natsURL string) *node {
	t.Helper()
	builder := testenv.Builder(t)
	cfg := Config{OfficeID: office, Listen: "127.0.0.1:0", SpoolDir: dir, SpoolLimitBytes: limit, MaxBodyBytes: 8 << 20}
	sp, err := spool.Open(dir, limit, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	dial := func() (*nats.Conn, error) {
		return broker.Connect(natsURL, "agent-"+office, testenv.Auth(broker.RoleCounter), testenv.Quiet)
	}
	a := New(cfg, sp, &intake.Office{Builder: builder, OfficeID: office}, dial, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{t: t, cfg: cfg, spool: sp, agent: a, base: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- a.Run(ctx, ln) }()
	t.Cleanup(n.stop)
	return n
}

// stop stops the agent and closes its spool; a second call does nothing.
func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("agent %s: %v", n.cfg.OfficeID, err)
	}
	if err := n.spool.Close(); err != nil {
		n.t.Errorf("close spool: %v", err)
	}
	n.cancel = nil
}

// post sends body to POST /v1/events and decodes the answer.
func (n *node) post(contentType, body string) (int, Response, http.Header) {
	n.t.Helper()
	resp, err := http.Post(n.base+"/v1/events", contentType, strings.NewReader(body))
	if err != nil {
		n.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var r Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		n.t.Fatalf("decode answer (status %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r, resp.Header
}

// postOK posts body and checks that every line was accepted.
func (n *node) postOK(body string) []string {
	n.t.Helper()
	status, r, _ := n.post("application/x-ndjson", body)
	if status != http.StatusAccepted {
		n.t.Fatalf("status %d, want 202: %d accepted, %d invalid (first: %+v), error %q", status, len(r.Accepted), len(r.Invalid), r.Invalid[:min(len(r.Invalid), 1)], r.Error)
	}
	ids := make([]string, len(r.Accepted))
	for i, a := range r.Accepted {
		ids[i] = a.EventID
	}
	return ids
}

func (n *node) status() Status {
	n.t.Helper()
	resp, err := http.Get(n.base + "/v1/status")
	if err != nil {
		n.t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		n.t.Fatalf("decode status: %v", err)
	}
	return s
}

// waitFor polls cond until it holds, failing the test after a minute, which
// only a broken agent needs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, what, time.Minute, cond)
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, testenv.Holds(what, cond))
}

// waitForwarded waits until n has nothing waiting.
func (n *node) waitForwarded() {
	n.t.Helper()
	waitFor(n.t, "agent "+n.cfg.OfficeID+" forwards everything", func() bool {
		s := n.status()
		return s.WaitingEvents == 0 && s.Link == spool.LinkUp
	})
}

// streamMsgs returns the events stream's messages in stream order.
func streamMsgs(t *testing.T, natsURL string) []*jetstream.RawStreamMsg {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, natsURL))
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StreamMessages(t, js, broker.EventsStream)
}

// idsByOffice groups the stream's event ids by office, in stream order, and
// fails on an id stored twice.
func idsByOffice(t *testing.T, msgs []*jetstream.RawStreamMsg) map[string][]string {
	t.Helper()
	seen := map[string]bool{}
	out := map[string][]string{}
	for _, m := range msgs {
		var ev events.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("message %d: %v", m.Sequence, err)
		}
		if seen[ev.EventID] {
			t.Errorf("event %s stored twice", ev.EventID)
		}
		seen[ev.EventID] = true
		out[ev.OfficeID] = append(out[ev.OfficeID], ev.EventID)
	}
	return out
}

// brokerAt starts a broker with the project's streams on dir and port.
func brokerAt(t *testing.T, dir string, port int) *embeddedbroker.Broker {
	t.Helper()
	b := testenv.BrokerAt(t, dir, port)
	testenv.JetStream(t, b.URL())
	return b
}
