package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/private"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// The program as a newcomer runs it: a real binary, real ports, Ctrl-C.

type devProcess struct {
	cmd         *exec.Cmd
	monitorPort int // the broker's monitoring endpoint
	mu          sync.Mutex
	stdout      bytes.Buffer
	stderr      bytes.Buffer
	done        chan error
}

func (p *devProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String() + p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func startDev(t *testing.T, bin, dataDir string, natsPort, chPort int, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{cmd: exec.Command(bin, args...), done: make(chan error, 1), monitorPort: testenv.FreePort(t)}
	p.cmd.Env = append(os.Environ(),
		"IKD_DATA_DIR="+dataDir,
		fmt.Sprintf("IKD_NATS_LISTEN=127.0.0.1:%d", natsPort),
		fmt.Sprintf("IKD_NATS_MONITOR_LISTEN=127.0.0.1:%d", p.monitorPort),
		fmt.Sprintf("IKD_CLICKHOUSE_LISTEN=127.0.0.1:%d", chPort),
		"IKD_PAPAN_LISTEN=127.0.0.1:0",
		"IKD_METRICS_LISTEN=127.0.0.1:0",
		"IKD_DEMO_SCALE=0.001",
	)
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func query(chPort int, sql string) (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/?query=%s", chPort, url.QueryEscape(sql)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return strings.TrimSpace(string(body)), err
}

// eventually polls sql until check accepts its answer.
func eventually(t *testing.T, p *devProcess, chPort int, sql string, check func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	var err error
	for time.Now().Before(deadline) {
		if last, err = query(chPort, sql); err == nil && check(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: last answer %q, %v\n%s", sql, last, err, p.output())
	return ""
}

func waitOutput(t *testing.T, p *devProcess, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(p.output(), want) {
			return
		}
	}
	t.Errorf("output lacks %q:\n%s", want, p.output())
}

func stop(t *testing.T, p *devProcess) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("ikd-dev exited with %v after Ctrl-C:\n%s", err, p.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ikd-dev did not stop within 30 s of Ctrl-C:\n%s", p.output())
	}
	if !strings.Contains(p.output(), "stopped cleanly") {
		t.Errorf("no clean stop reported:\n%s", p.output())
	}
}

func TestDevStackRunsStopsOnCtrlCAndContinuesWhereItStopped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ikd-dev")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	// As a user's umask of 022 would leave it: ikd-dev must take it back.
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	natsPort, chPort := testenv.FreePort(t), testenv.FreePort(t)

	first := startDev(t, bin, dataDir, natsPort, chPort, "--simulate-rate=300", "--table-every=1s")
	waitOutput(t, first, "ready:")
	eventually(t, first, chPort, "SELECT version()", func(v string) bool { return strings.HasPrefix(v, "26.5") })
	eventually(t, first, chPort, "SELECT count() FROM ikd.attainment_city WHERE year = toYear(as_of)", func(n string) bool { return n == "514" })
	eventually(t, first, chPort, "SELECT count() FROM ikd.attainment_province WHERE year = toYear(as_of)", func(n string) bool { return n == "38" })
	// The simulator's events, not the demo year seeded before it.
	const simulated = "SELECT count() FROM ikd.events WHERE NOT startsWith(event_id, 'demo-')"
	counted := eventually(t, first, chPort, simulated, func(n string) bool { v, _ := strconv.Atoi(n); return v >= 100 })
	for _, want := range []string{"data directory", "nats://127.0.0.1:" + strconv.Itoa(natsPort), "embedded engine 26.5", "attainment by province", "Bengkulu", "papan capaian   http://127.0.0.1:", "demo year       " + strconv.Itoa(time.Now().In(time.FixedZone("WIB", 7*3600)).Year()), "seeded",
		"no anonymous access", filepath.Join(dataDir, "nats", "credentials", "admin.env")} {
		waitOutput(t, first, want)
	}
	checkBrokerIsPrivateAndSyncing(t, dataDir, natsPort, first.monitorPort)
	checkReadyWithMetrics(t, first)

	second := startDev(t, bin, dataDir, testenv.FreePort(t), testenv.FreePort(t), "--simulate-rate=0")
	select {
	case err := <-second.done:
		second.done <- err
		if err == nil || !strings.Contains(second.output(), "in use by another process") {
			t.Errorf("a second ikd-dev on the same data directory: %v\n%s", err, second.output())
		}
	case <-time.After(30 * time.Second):
		t.Error("a second ikd-dev on the same data directory kept running")
	}

	stop(t, first)
	before, _ := strconv.Atoi(counted)
	checkPrivate(t, dataDir, first.output())

	again := startDev(t, bin, dataDir, natsPort, chPort, "--simulate-rate=0", "--table-every=0")
	waitOutput(t, again, "ready:")
	eventually(t, again, chPort, simulated, func(n string) bool { v, _ := strconv.Atoi(n); return v >= before })
	stop(t, again)
}

// checkPrivate: nothing under the data directory is the group's or others',
// and the pseudonym key ikd-dev made is there but was never printed.
func checkPrivate(t *testing.T, dataDir, output string) {
	t.Helper()
	shared, err := private.Shared(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 0 {
		t.Errorf("the group or others may use %d paths under the data directory, such as %v", len(shared), shared[:min(5, len(shared))])
	}
	key, err := os.ReadFile(filepath.Join(dataDir, nik.KeyFileName))
	if err != nil {
		t.Fatalf("ikd-dev made no pseudonym key: %v", err)
	}
	if strings.Contains(output, strings.TrimSpace(string(key))) || !strings.Contains(output, "pseudonym key") {
		t.Errorf("the pseudonym key is printed, or where it is is not:\n%s", output)
	}
	if strings.Contains(output, "public development key") {
		t.Errorf("ikd-dev used the public development key:\n%s", output)
	}
}

// checkBrokerIsPrivateAndSyncing probes ikd-dev's broker as a stranger and
// as an operator would: no anonymous client, credentials private to the
// user, JetStream syncing every write as /varz reports it.
func checkBrokerIsPrivateAndSyncing(t *testing.T, dataDir string, natsPort, monitorPort int) {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The NATS protocol: the server's INFO, then our CONNECT without credentials.
	if _, err := fmt.Fprint(conn, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := io.ReadAll(conn)
	if !strings.Contains(string(reply), "Authorization Violation") {
		t.Errorf("an anonymous client was not refused: %q", reply)
	}
	creds := filepath.Join(dataDir, "nats", "credentials")
	if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory: %v, want mode 0700", err)
	}
	if fi, err := os.Stat(filepath.Join(creds, "admin.env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.env: %v, want mode 0600", err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", monitorPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"sync_always": true`) {
		t.Errorf("/varz does not report sync_always: %s", body)
	}
}

// metricsURL is where ikd-dev says it serves its metrics.
var metricsURL = regexp.MustCompile(`metrics +(http://\S+)/metrics`)

// checkReadyWithMetrics: the address ikd-dev printed answers /healthz,
// turns ready, and serves the aggregator's and the alerter's metrics from
// one registry.
func checkReadyWithMetrics(t *testing.T, p *devProcess) {
	t.Helper()
	m := metricsURL.FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("ikd-dev did not print its metrics address:\n%s", p.output())
	}
	get := func(path string) (int, string, error) {
		resp, err := http.Get(m[1] + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	if code, body, err := get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		code, body, err := get("/readyz")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %q %v", code, body, err)
		}
		return nil
	})
	_, body, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ikd_ready{program="ikd-dev"} 1`, "ikd_aggregator_written_events_total", "ikd_alerter_alerts_firing",
		`ikd_consumer_pending_messages{consumer="ikd-aggregator",stream="IKD_EVENTS"}`, "ikd_warehouse_reachable 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
