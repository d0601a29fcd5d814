package agent

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/embeddedbroker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

const (
	officeA = "1771-OFF-01"
	officeB = "1771-OFF-02"
	mib     = 1 << 20
)

// restartBroker starts a broker again on dir and port, retrying while the
// port is still held by the one before.
func restartBroker(t *testing.T, dir string, port int) *embeddedbroker.Broker {
	t.Helper()
	var b *embeddedbroker.Broker
	waitFor(t, "the broker starts again", func() bool {
		var err error
		b, err = embeddedbroker.Start(testenv.BrokerConfig(dir, port))
		return err == nil
	})
	t.Cleanup(b.Shutdown)
	return b
}

func TestEventsAcceptedDuringALongOutageAreForwardedOnceInOrderPerOffice(t *testing.T) {
	total, outage := 3000, 2*time.Minute // per office
	if testing.Short() {
		total, outage = 1500, 0
	}
	storeDir, port := testenv.StoreDir(t), testenv.FreePort(t)
	b := brokerAt(t, storeDir, port)
	url := b.URL()
	agents := map[string]*node{
		officeA: startAgent(t, officeA, t.TempDir(), 64*mib, url),
		officeB: startAgent(t, officeB, t.TempDir(), 64*mib, url),
	}
	want := map[string][]string{}
	for office, n := range agents {
		want[office] = n.postOK(lines(office, 0, 10))
		n.waitForwarded()
	}

	b.Shutdown()
	for office, n := range agents {
		waitFor(t, office+" reports the link down", func() bool { return n.status().Link == spool.LinkDown })
		for from := 10; from < total; from += 250 {
			want[office] = append(want[office], n.postOK(lines(office, from, min(from+250, total)))...)
		}
		s := n.status()
		if s.WaitingEvents != total-10 || s.OldestReceivedAt == nil || s.Link != spool.LinkDown {
			t.Errorf("%s during the outage: %+v; want %d events waiting, the oldest's time, link down", office, s, total-10)
		}
	}

	// The full test keeps the link down for minutes, through many retries.
	waitUntil(t, "the outage has lasted "+outage.String(), outage+time.Minute, func() bool {
		s := agents[officeA].status()
		return s.LinkSince != nil && time.Since(*s.LinkSince) >= outage
	})
	restartBroker(t, storeDir, port)
	for _, n := range agents {
		n.waitForwarded()
	}
	got := idsByOffice(t, streamMsgs(t, url))
	for office, ids := range want {
		if !slices.Equal(got[office], ids) {
			t.Errorf("%s: the stream holds %d events, want the %d accepted, each once, in the order accepted", office, len(got[office]), len(ids))
		}
	}
	for office, n := range agents {
		if s := n.status(); s.ForwardedTotal != int64(total) || s.LastForwardAt == nil || s.SetAside != 0 {
			t.Errorf("%s after the outage: %+v; want %d forwarded, a last forward time, nothing set aside", office, s, total)
		}
	}
}

func TestFiftyConcurrentClientsAllAcceptedEventsAreDurable(t *testing.T) {
	const clients, requests, perRequest = 50, 4, 5
	// No broker yet: everything accepted must be in the spool.
	port := testenv.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	dir := t.TempDir()
	n := startAgent(t, officeA, dir, 64*mib, url)

	var mu sync.Mutex
	var accepted []string
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for r := range requests {
				from := (c*requests + r) * perRequest
				ids := n.postOK(lines(officeA, from, from+perRequest))
				mu.Lock()
				accepted = append(accepted, ids...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(accepted) != clients*requests*perRequest {
		t.Fatalf("%d events accepted, want %d", len(accepted), clients*requests*perRequest)
	}
	n.stop()

	// Reopened, the spool holds every accepted event; the broker gets each once.
	brokerAt(t, testenv.StoreDir(t), port)
	n = startAgent(t, officeA, dir, 64*mib, url)
	if s := n.status(); s.WaitingEvents != len(accepted) && s.ForwardedTotal+int64(s.WaitingEvents) != int64(len(accepted)) {
		t.Errorf("after a restart: %+v; want %d events waiting or forwarded", s, len(accepted))
	}
	n.waitForwarded()
	got := idsByOffice(t, streamMsgs(t, url))[officeA]
	slices.Sort(got)
	slices.Sort(accepted)
	if !slices.Equal(got, accepted) {
		t.Errorf("the stream holds %d events, want the %d accepted, each once", len(got), len(accepted))
	}
}

func TestAFullSpoolAnswers507KeepsWhatItAcceptedAndTakesEventsAgainOnceForwarded(t *testing.T) {
	storeDir, port := testenv.StoreDir(t), testenv.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	// Room for a few dozen events, and no broker.
	n := startAgent(t, officeA, t.TempDir(), 16<<10, url)
	var accepted []string
	i := 0
	for ; ; i++ {
		status, r, header := n.post("application/x-ndjson", lines(officeA, i, i+1))
		if status == http.StatusInsufficientStorage {
			if len(r.NotTaken) != 1 || !strings.Contains(r.Error, "spool full") || header.Get("Retry-After") == "" {
				t.Errorf("507 answer: %+v, Retry-After %q; want the event not taken, the reason and when to retry", r, header.Get("Retry-After"))
			}
			break
		}
		if status != http.StatusAccepted {
			t.Fatalf("event %d: status %d: %+v", i, status, r)
		}
		accepted = append(accepted, r.Accepted[0].EventID)
	}
	if len(accepted) < 10 {
		t.Fatalf("only %d events fit", len(accepted))
	}
	if s := n.status(); s.WaitingEvents != len(accepted) || s.RefusedFullTotal != 1 {
		t.Errorf("when full: %+v; want %d waiting, 1 refused", s, len(accepted))
	}

	brokerAt(t, storeDir, port)
	n.waitForwarded()
	accepted = append(accepted, n.postOK(lines(officeA, i, i+1))...)
	n.waitForwarded()
	if got := idsByOffice(t, streamMsgs(t, url))[officeA]; !slices.Equal(got, accepted) {
		t.Errorf("the stream holds %v, want the accepted %v in order", got, accepted)
	}
}

func TestInvalidLinesAre400WithLineAndReasonAndTheValidOnesKept(t *testing.T) {
	b := brokerAt(t, testenv.StoreDir(t), -1)
	n := startAgent(t, officeA, t.TempDir(), 64*mib, b.URL())
	future := time.Now().Add(365 * 24 * time.Hour).Format(time.RFC3339)
	body := strings.Join([]string{
		inputLine(officeA, 1),
		`{"type":"activation","nik":"177101120590001"}`,
		inputLine("", 2), // the agent's office
		fmt.Sprintf(`{"type":"activation","nik":%q,"occurred_at":%q}`, nikOf(3), future),
		inputLine(officeB, 4),
		`{"type":"activation","nik":`,
	}, "\n")
	status, r, _ := n.post("application/x-ndjson", body)
	if status != http.StatusBadRequest {
		t.Errorf("status %d, want 400", status)
	}
	var lines []int
	for _, a := range r.Accepted {
		lines = append(lines, a.Line)
	}
	if !slices.Equal(lines, []int{1, 3}) {
		t.Errorf("accepted lines %v, want 1 and 3", lines)
	}
	want := []Invalid{
		{Line: 2, Reason: events.ReasonInvalidNIK},
		{Line: 4, Reason: events.ReasonFutureTime},
		{Line: 5, Reason: "wrong_office"},
		{Line: 6, Reason: events.ReasonMalformedJSON},
	}
	if len(r.Invalid) != len(want) {
		t.Fatalf("invalid %+v, want lines 2, 4, 5, 6", r.Invalid)
	}
	for i, w := range want {
		if got := r.Invalid[i]; got.Line != w.Line || got.Reason != w.Reason || got.Detail == "" {
			t.Errorf("invalid[%d] = %+v, want line %d, reason %s and a detail", i, got, w.Line, w.Reason)
		}
		if strings.Contains(r.Invalid[i].Detail, "177101") {
			t.Errorf("the answer holds a NIK: %q", r.Invalid[i].Detail)
		}
	}
	n.waitForwarded()
	if got := idsByOffice(t, streamMsgs(t, b.URL()))[officeA]; len(got) != 2 {
		t.Errorf("the stream holds %d events, want the 2 valid ones", len(got))
	}
}

func TestACounterClockFarInTheFutureIsRejectedWithAReason(t *testing.T) {
	b := brokerAt(t, testenv.StoreDir(t), -1)
	n := startAgent(t, officeA, t.TempDir(), 64*mib, b.URL())
	future := time.Now().Add(48 * time.Hour).Format(time.RFC3339)
	status, r, _ := n.post("application/json", fmt.Sprintf(`{"type":"activation","nik":%q,"occurred_at":%q}`, nikOf(1), future))
	if status != http.StatusBadRequest || len(r.Invalid) != 1 || r.Invalid[0].Reason != events.ReasonFutureTime || !strings.Contains(r.Invalid[0].Detail, "occurred_at") {
		t.Errorf("status %d, %+v; want 400 with reason future_time naming occurred_at", status, r)
	}
	if s := n.status(); s.AcceptedTotal != 0 || s.InvalidTotal != 1 {
		t.Errorf("status %+v; want nothing accepted, one invalid", s)
	}
}

func TestTheAgentRecordsWhenItReceivedEachEvent(t *testing.T) {
	b := brokerAt(t, testenv.StoreDir(t), -1)
	n := startAgent(t, officeA, t.TempDir(), 64*mib, b.URL())
	before := time.Now().UTC()
	// A JSON array, and a single object, are taken too.
	n.postOK(fmt.Sprintf("[%s,%s]", inputLine(officeA, 1), inputLine(officeA, 2)))
	after := time.Now().UTC()
	n.waitForwarded()
	msgs := streamMsgs(t, b.URL())
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	for _, m := range msgs {
		at, err := time.Parse(time.RFC3339Nano, m.Header.Get(publish.ReceivedAtHeader))
		if err != nil || at.Before(before) || at.After(after) {
			t.Errorf("message %d received at %q (%v); want a time between %v and %v", m.Sequence, m.Header.Get(publish.ReceivedAtHeader), err, before, after)
		}
		if strings.Contains(string(m.Data), "received_at") {
			t.Errorf("the event's body carries received_at, outside the contract: %s", m.Data)
		}
	}
}

func TestTheSameEventSentTwiceIsStoredOnce(t *testing.T) {
	b := brokerAt(t, testenv.StoreDir(t), -1)
	n := startAgent(t, officeA, t.TempDir(), 64*mib, b.URL())
	first := n.postOK(lines(officeA, 0, 3))
	again := n.postOK(lines(officeA, 0, 3))
	if !slices.Equal(first, again) {
		t.Errorf("ids %v then %v; want the same ids for the same lines", first, again)
	}
	n.waitForwarded()
	if got := idsByOffice(t, streamMsgs(t, b.URL()))[officeA]; !slices.Equal(got, first) {
		t.Errorf("the stream holds %v, want %v once", got, first)
	}
}

func TestATornWriteAtTheEndOfTheSpoolIsCutAndTheIntactEventsForwarded(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	dir := t.TempDir()
	n := startAgent(t, officeA, dir, 64*mib, url)
	accepted := n.postOK(lines(officeA, 0, 20))
	n.stop()
	// A power cut in the middle of the next append: half a record.
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, '{', '"', 'v'}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	brokerAt(t, testenv.StoreDir(t), port)
	n = startAgent(t, officeA, dir, 64*mib, url)
	if s := n.status(); s.WaitingEvents+int(s.ForwardedTotal) != len(accepted) {
		t.Errorf("after the torn write: %+v; want the %d intact events", s, len(accepted))
	}
	n.waitForwarded()
	if got := idsByOffice(t, streamMsgs(t, url))[officeA]; !slices.Equal(got, accepted) {
		t.Errorf("the stream holds %d events, want the %d intact ones in order", len(got), len(accepted))
	}
}

func TestTheNIKNeverReachesTheSpoolOnDisk(t *testing.T) {
	dir := t.TempDir()
	n := startAgent(t, officeA, dir, 64*mib, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	n.postOK(lines(officeA, 0, 50))
	if s := n.status(); s.Link != LinkConnecting || !strings.Contains(s.LinkError, "connect") {
		t.Errorf("status %+v; want the link connecting and why", s)
	}
	n.stop()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if strings.Contains(string(data), nikOf(i)) {
				t.Fatalf("%s holds the NIK of line %d", f.Name(), i+1)
			}
		}
	}
}

func TestEventsSetAsideBeforeARestartAreStillShown(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	lines := `{"at":"2026-12-01T08:00:00Z","reason":"message size exceeds maximum allowed","event_id":"a","subject":"ikd.v1.activation.17.71","event":{}}` + "\n" +
		`{"at":"2026-12-01T08:01:00Z","reason":"message size exceeds maximum allowed","event_id":"b","subject":"ikd.v1.activation.17.71","event":{}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, spool.RejectedFile), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startAgent(t, officeA, dir, 64*mib, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	if s := n.status(); s.SetAside != 2 || s.SetAsideFile != filepath.Join(dir, spool.RejectedFile) {
		t.Errorf("status %+v; want the 2 events set aside and their file", s)
	}
}

func TestAStoppingAgentAnswers503(t *testing.T) {
	n := startAgent(t, officeA, t.TempDir(), 64*mib, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	n.agent.stopping.Store(true)
	status, r, header := n.post("application/x-ndjson", lines(officeA, 0, 1))
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || len(r.Accepted) != 0 {
		t.Errorf("status %d, %+v, Retry-After %q; want 503 with nothing accepted and when to retry", status, r, header.Get("Retry-After"))
	}
	if s := n.status(); s.Accepting || s.Link != LinkConnecting {
		t.Errorf("status %+v; want not accepting, link connecting", s)
	}
}

func TestMetricsAreInPrometheusTextFormat(t *testing.T) {
	n := startAgent(t, officeA, t.TempDir(), 64*mib, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	n.postOK(lines(officeA, 0, 2))
	resp, err := http.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(body)
	for _, want := range []string{
		"# TYPE ikd_agent_waiting_events gauge\n",
		`ikd_agent_waiting_events{office="1771-OFF-01"} 2` + "\n",
		`ikd_agent_accepted_events_total{office="1771-OFF-01"} 2` + "\n",
		`ikd_agent_link_up{office="1771-OFF-01"} 0` + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

func TestAgentIsHealthyAndReadyWhileItTakesEventsAndNotReadyWhenStopping(t *testing.T) {
	n := startAgent(t, officeA, t.TempDir(), 64*mib, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	get := func(path string) int {
		resp, err := http.Get(n.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Without a link the agent still takes events into its spool: ready.
	if h, r := get("/healthz"), get("/readyz"); h != http.StatusOK || r != http.StatusOK {
		t.Errorf("/healthz %d, /readyz %d; want 200, 200 with the broker unreachable", h, r)
	}
	n.agent.stopping.Store(true)
	testenv.Eventually(t, 10*time.Second, func() error {
		if r := get("/readyz"); r != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz %d while stopping, want 503", r)
		}
		return nil
	})
}
