package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/agent"
)

// childEnv makes the test binary run `ikd-counter serve` instead of the
// tests, so that a test can SIGKILL a real agent process.
const childEnv = "IKD_COUNTER_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, []string{"serve"}, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(testenv.Run(m))
}

const agentOffice = "1771-OFF-07"

// agentProc is an agent process on a spool directory.
type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	out  *bytes.Buffer
	done chan struct{}
}

// startAgentProc starts an agent process on spoolDir forwarding to natsURL
// and waits until it answers.
func startAgentProc(t *testing.T, spoolDir, natsURL string) *agentProc {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "IKD_NATS_URL="+natsURL, "IKD_NATS_USER="+testenv.Auth(broker.RoleCounter).User, "IKD_NATS_PASSWORD="+testenv.Auth(broker.RoleCounter).Password, "IKD_OFFICE_ID="+agentOffice,
		"IKD_SPOOL_DIR="+spoolDir, "IKD_AGENT_LISTEN="+listen, "IKD_PSEUDONYM_KEY=", "IKD_DEVELOPMENT=1")
	p := &agentProc{t: t, cmd: cmd, base: "http://" + listen, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	waitUntil(t, "the agent answers", func() bool {
		select {
		case <-p.done:
			t.Fatalf("the agent exited:\n%s", p.out)
		default:
		}
		resp, err := http.Get(p.base + "/v1/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *agentProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *agentProc) status() agent.Status {
	p.t.Helper()
	resp, err := http.Get(p.base + "/v1/status")
	if err != nil {
		p.t.Fatalf("status: %v\n%s", err, p.out)
	}
	defer resp.Body.Close()
	var s agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		p.t.Fatal(err)
	}
	return s
}

// post sends input lines from..to-1 and returns the accepted event ids.
func (p *agentProc) post(from, to int) []string {
	p.t.Helper()
	var body strings.Builder
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	for i := from; i < to; i++ {
		nik := fmt.Sprintf("177101%02d0590%04d", 1+i/9999%28, 1+i%9999)
		fmt.Fprintf(&body, `{"type":"activation","nik":%q,"occurred_at":%q}`+"\n", nik, start.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
	}
	resp, err := http.Post(p.base+"/v1/events", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r agent.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusAccepted {
		p.t.Fatalf("status %d, %+v, %v", resp.StatusCode, r, err)
	}
	ids := make([]string, len(r.Accepted))
	for i, a := range r.Accepted {
		ids[i] = a.EventID
	}
	return ids
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, testenv.Holds(what, cond))
}

// streamCount is how many events the broker holds.
func streamCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	return testenv.StreamInfo(t, js, broker.EventsStream).State.Msgs
}

// checkCountedOnce runs the aggregator into the warehouse and checks that
// the accepted activations, each of its own resident, count once each, and
// that the stream holds them once each in the order accepted.
func checkCountedOnce(t *testing.T, js jetstream.JetStream, accepted []string) {
	t.Helper()
	if got := streamIDs(t, js); !slices.Equal(got, accepted) {
		t.Errorf("the stream holds %d events, want the %d accepted, once each, in order", len(got), len(accepted))
	}
	conn := testenv.Warehouse(t)
	cfg := aggregator.Config{Durable: "ikd-aggregator", BatchSize: 5000, FlushInterval: 50 * time.Millisecond, AckWait: 30 * time.Second,
		MaxDeliver: 3, RefusedDelay: 10 * time.Millisecond, RetryMaxInterval: 200 * time.Millisecond, FutureTolerance: 10 * time.Minute,
		LeaseTTL: 10 * time.Second}
	agg, err := chwriter.Setup(t.Context(), cfg, js, conn, broker.StreamOptions{}, "", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()
	defer func() { cancel(); <-done }()
	year := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).In(events.WIB).Year()
	var activated uint64
	waitUntil(t, "the warehouse counts every accepted event", func() bool {
		row := conn.QueryRow(t.Context(), "SELECT toUInt64(sum(activated)) FROM ikd.attainment_city WHERE city_code = '17.71' AND year = ?", year)
		return row.Scan(&activated) == nil && activated >= uint64(len(accepted))
	})
	if agg.Stats.Written.Load() < uint64(len(accepted)) {
		t.Errorf("the aggregator wrote %d events, want at least %d", agg.Stats.Written.Load(), len(accepted))
	}
	if activated != uint64(len(accepted)) {
		t.Errorf("the warehouse counts %d activated residents, want the %d accepted", activated, len(accepted))
	}
}

func TestAgentKilledBetweenAcceptingAndForwardingLosesNothing(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	dir := t.TempDir()
	// No broker: what the agent accepted is only in its spool when it dies.
	p := startAgentProc(t, dir, url)
	var accepted []string
	for from := 0; from < 1000; from += 100 {
		accepted = append(accepted, p.post(from, from+100)...)
	}
	p.kill()

	_, js := testenv.JetStream(t, testenv.BrokerAt(t, testenv.StoreDir(t), port).URL())
	p = startAgentProc(t, dir, url)
	waitUntil(t, "the restarted agent forwards everything", func() bool {
		s := p.status()
		return s.WaitingEvents == 0 && s.Link == "up"
	})
	checkCountedOnce(t, js, accepted)
}

func TestAgentKilledBetweenForwardingAndRecordingTheAckCountsNothingTwice(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	dir := t.TempDir()
	p := startAgentProc(t, dir, url)
	var accepted []string
	posted := 0
	postMore := func() {
		accepted = append(accepted, p.post(posted, posted+500)...)
		posted += 500
	}
	for posted < 5000 {
		postMore()
	}
	_, js := testenv.JetStream(t, testenv.BrokerAt(t, testenv.StoreDir(t), port).URL())

	// Kill the agent while it forwards, until a kill falls after the broker
	// stored events and before the agent recorded their ack: its spool then
	// still holds events that the stream has. An agent started where no
	// broker listens shows what the spool holds without forwarding any of it.
	offline := fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t))
	resent := false
	for try := 0; try < 8 && !resent; try++ {
		before := streamCount(t, js)
		if before == uint64(len(accepted)) { // it forwarded the rest before a kill
			postMore()
		}
		waitUntil(t, "the agent forwards", func() bool { return streamCount(t, js) > before })
		p.kill()
		p = startAgentProc(t, dir, offline)
		resent = streamCount(t, js)+uint64(p.status().WaitingEvents) > uint64(len(accepted))
		p.kill()
		p = startAgentProc(t, dir, url)
	}
	if !resent {
		t.Errorf("no kill fell between an ack and its record; the test did not test what it says")
	}
	waitUntil(t, "the agent forwards everything", func() bool {
		s := p.status()
		return s.WaitingEvents == 0 && s.Link == "up"
	})
	checkCountedOnce(t, js, accepted)
}
