package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/aggregator/chwriter"
	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/endpoints"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/observe"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/agent"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const office = "1771-OFF-01"

// TestPrometheusScrapesEveryDocumentedMetric runs a real stack and a real
// Prometheus scraping it with the alerting rules loaded, and waits until
// every metric of the README's table has reached Prometheus.
func TestPrometheusScrapesEveryDocumentedMetric(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("the scrape check needs Prometheus: `make deps` installs Debian's package prometheus (apt-get install prometheus)")
	}
	docs := documented(t)
	pipeline, agentAddr := startStack(t)
	api := startPrometheus(t, bin, pipeline, agentAddr)

	var missing []string
	err = testenv.Await(3*time.Minute, func() error {
		names, err := api.names()
		if err != nil {
			return err
		}
		missing = missing[:0]
		for name, typ := range docs {
			if !slices.Contains(names, seriesName(name, typ)) {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return fmt.Errorf("%d documented metrics not in Prometheus: %s", len(missing), strings.Join(missing, ", "))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\nPrometheus' log:\n%s", err, api.log())
	}
	names, err := api.names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, "ikd_") && metricOf(name, docs) == "" {
			t.Errorf("%s is exported but not documented in the README's metric table", name)
		}
	}
	if n, err := api.ruleCount(); err != nil || n != 10 {
		t.Errorf("Prometheus loaded %d alerting rules (%v); want the 10 of ikd.rules.yml", n, err)
	}
	// The dashboard's queries parse and run on this Prometheus.
	for _, q := range queries(dashboard(t)) {
		var result json.RawMessage
		if err := api.get("/api/v1/query?query="+url.QueryEscape(q), &result); err != nil {
			t.Errorf("pipeline.json's query %s: %v", q, err)
		}
	}
}

// startStack runs what ikd-dev runs, in this process: the embedded broker
// and engine, an aggregator and an alerter on one registry; and an office
// agent. It publishes valid events through the agent and one invalid event,
// so that the histograms and a dead letter have something to show, and
// returns the two metrics addresses.
func startStack(t *testing.T) (pipeline, agentAddr string) {
	t.Helper()
	b := testenv.Broker(t)
	_, adminJS := testenv.JetStream(t, b.URL())
	db := testenv.Warehouse(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := endpoints.Ready(ctx, adminJS, db, broker.StreamOptions{}, "", testenv.Quiet); err != nil {
		t.Fatal(err)
	}
	// The defaults are those of the envconfig tags, as the programs load them.
	var cfg struct {
		Aggregator aggregator.Config `envconfig:"AGGREGATOR"`
		Alerter    alerter.Config    `envconfig:"ALERTER"`
	}
	if err := envconfig.Process("IKD_SCRAPE_TEST_UNSET", &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Aggregator.FlushInterval = 50 * time.Millisecond
	aggNC, aggJS := as(t, b.URL(), broker.RoleAggregator)
	agg, err := chwriter.Setup(ctx, cfg.Aggregator, aggJS, db, broker.StreamOptions{}, "", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	alNC, alJS := as(t, b.URL(), broker.RoleAlerter)
	al, err := alerter.Setup(ctx, cfg.Alerter, alJS, db, broker.StreamOptions{}, "", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(al.Close)

	// Stopped before the connections close, whose cleanups came first.
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	obs := observe.New("ikd-dev")
	obs.Broker("aggregator", aggNC)
	obs.Broker("alerter", alNC)
	obs.Warehouse(db.Ping)
	obs.Consumer(agg.Consumer())
	obs.Consumer(al.Consumer())
	obs.MustRegister(agg.Collector(), al.Collector())
	for _, run := range []func(context.Context) error{agg.Run, al.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("pipeline part stopped: %v", err)
			}
		})
	}
	obs.Started()
	pipeline, err = obs.Serve(ctx, "127.0.0.1:0", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	agentAddr = startAgent(t, ctx, &wg, b.URL())
	post(t, agentAddr, 5)
	// No office sends this: the aggregator dead-letters it.
	if _, err := adminJS.Publish(ctx, events.SubjectPrefix+".activation.17.71", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	return pipeline, agentAddr
}

func as(t *testing.T, url string, role broker.Role) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := testenv.ConnectAs(t, url, role)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// startAgent runs an office agent forwarding to natsURL and returns its address.
func startAgent(t *testing.T, ctx context.Context, wg *sync.WaitGroup, natsURL string) string {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(dir, 64<<20, testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dial := func() (*nats.Conn, error) {
		return broker.Connect(natsURL, "agent-"+office, testenv.Auth(broker.RoleCounter), testenv.Quiet)
	}
	a := agent.New(agent.Config{OfficeID: office, Listen: ln.Addr().String(), SpoolDir: dir, SpoolLimitBytes: 64 << 20, MaxBodyBytes: 8 << 20},
		sp, &intake.Office{Builder: testenv.Builder(t), OfficeID: office}, dial, testenv.Quiet)
	// Stopped by a cleanup of its own, which runs before the stack's.
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		if err := a.Run(ctx, ln); err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	t.Cleanup(func() { stop(); <-done; _ = sp.Close() })
	return ln.Addr().String()
}

// post sends n valid activations of Kota Bengkulu residents to the agent.
func post(t *testing.T, addr string, n int) {
	t.Helper()
	at := time.Now().Add(-time.Hour).In(events.WIB)
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, `{"type":"activation","nik":"17710101059%05d","occurred_at":%q}`+"\n", 1+i, at.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
	}
	resp, err := http.Post("http://"+addr+"/v1/events", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("the agent answered %d: %s", resp.StatusCode, b)
	}
}

// promAPI is a running Prometheus' HTTP API.
type promAPI struct {
	base string
	out  *testenv.LogBuffer
}

func (p promAPI) log() string { return p.out.String() }

// startPrometheus runs bin scraping the two targets every second with the
// alerting rules loaded, stopped when the test ends.
func startPrometheus(t *testing.T, bin, pipeline, agentAddr string) promAPI {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs("ikd.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: ikd-dev
    static_configs: [{targets: [%q]}]
  - job_name: ikd-counter-agent
    static_configs: [{targets: [%q]}]
`, rules, pipeline, agentAddr)
	confFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+confFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	out := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return promAPI{base: "http://" + listen, out: out}
}

// get decodes the data of an API answer into v.
func (p promAPI) get(path string, v any) error {
	resp, err := http.Get(p.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("%s: %d: %w", path, resp.StatusCode, err)
	}
	if answer.Status != "success" {
		return fmt.Errorf("%s: %s", path, answer.Error)
	}
	return json.Unmarshal(answer.Data, v)
}

// names are the metric names Prometheus holds.
func (p promAPI) names() ([]string, error) {
	var names []string
	err := p.get("/api/v1/label/__name__/values", &names)
	return names, err
}

// ruleCount is how many alerting rules Prometheus loaded.
func (p promAPI) ruleCount() (int, error) {
	var data struct {
		Groups []struct {
			Rules []struct {
				Type string `json:"type"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules?type=alert", &data); err != nil {
		return 0, err
	}
	n := 0
	for _, g := range data.Groups {
		n += len(g.Rules)
	}
	if n == 0 {
		return 0, errors.New("no alerting rule loaded")
	}
	return n, nil
}
