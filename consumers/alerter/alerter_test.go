package alerter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/alerter"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// feb13 is midday of 13 February 2023 in WIB, when the figures of the domain
// note were reported.
var feb13 = time.Date(2023, 2, 13, 12, 0, 0, 0, time.FixedZone("WIB", 7*3600))

type env struct {
	js        jetstream.JetStream // the admin's, for the test's own looks
	alerterJS jetstream.JetStream // the alerter role's, for the alerter
	conn      driver.Conn
	ctx       context.Context
}

func testConfig() alerter.Config {
	cfg := alerter.DefaultConfig()
	cfg.Interval = time.Hour
	cfg.ChangesWindow = 200 * time.Millisecond
	cfg.WebhookInitialInterval = 20 * time.Millisecond
	cfg.WebhookMaxElapsed = 10 * time.Second
	return cfg
}

// start is a fresh broker and an emptied, migrated warehouse.
func start(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := testenv.Broker(t)
	_, js := testenv.JetStream(t, b.URL())
	alerterJS, err := jetstream.New(testenv.ConnectAs(t, b.URL(), broker.RoleAlerter))
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.Warehouse(t)
	return &env{js: js, alerterJS: alerterJS, conn: conn, ctx: ctx}
}

// alerter sets up (first call) or creates a new alerter evaluating as of feb13.
func (e *env) alerter(t *testing.T, cfg alerter.Config) *alerter.Alerter {
	t.Helper()
	a, err := alerter.Setup(e.ctx, cfg, e.alerterJS, e.conn, broker.StreamOptions{}, "", testenv.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	a.Now = func() time.Time { return feb13 }
	return a
}

func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := e.conn.Exec(e.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	// Events written straight into ikd.events are counted as the
	// aggregator would count them.
	if strings.HasPrefix(strings.TrimSpace(sql), "INSERT INTO ikd.events") {
		if err := warehouse.Recount(e.ctx, e.conn, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// activations writes n distinct residents of city activated between 2 January
// and 11 February 2023 straight into ikd.events.
func (e *env) activations(t *testing.T, city string, n int) {
	t.Helper()
	e.exec(t, `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
		SELECT concat(?, '-', toString(number)), 'activation', lower(hex(MD5(concat(?, '-', toString(number))))),
			splitByChar('.', ?)[1], ?, concat(?, '.01'), 'OFF-01', 'counter',
			addSeconds(toDateTime64('2023-01-02 00:00:00', 3, 'UTC'), (number * 7919) % (40 * 86400)), number
		FROM numbers(?)`, city, city, city, city, city, n)
}

var targetVersion int

// target sets a 2023 target; each call supersedes the previous one.
func (e *env) target(t *testing.T, region, kind string, value float64, baseline uint64) {
	t.Helper()
	targetVersion++
	e.exec(t, `INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline, updated_at)
		VALUES (2023, ?, ?, ?, ?, toDateTime64('2030-01-01 00:00:00', 3, 'UTC') + ?)`, region, kind, value, baseline, targetVersion)
}

type viewRow struct {
	Activated, Target          uint64
	AttainmentPct, ExpectedPct float64
	BehindPace                 bool
}

func (e *env) view(t *testing.T, level, code string) viewRow {
	t.Helper()
	var r viewRow
	col := level + "_code"
	err := e.conn.QueryRow(e.ctx, fmt.Sprintf(`SELECT activated, target, attainment_pct, expected_pct, behind_pace
		FROM ikd.attainment_%s_as_of(as_of = '2023-02-13') WHERE year = 2023 AND %s = ?`, level, col), code).
		Scan(&r.Activated, &r.Target, &r.AttainmentPct, &r.ExpectedPct, &r.BehindPace)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rows returns "rule/region/state/severity" of every row of ikd.alerts, in order.
func (e *env) rows(t *testing.T) []string {
	t.Helper()
	rs, err := e.conn.Query(e.ctx, "SELECT rule, region_code, state, severity FROM ikd.alerts ORDER BY at, rule, region_code")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var rule, region, state, sev string
		if err := rs.Scan(&rule, &region, &state, &sev); err != nil {
			t.Fatal(err)
		}
		out = append(out, rule+"/"+region+"/"+state+"/"+sev)
	}
	return out
}

// published reads what IKD_ALERTS holds under filter, as "subject state":
// as many messages as the stream counts under filter, however slowly they come.
func (e *env) published(t *testing.T, filter string) []string {
	t.Helper()
	s, err := e.js.Stream(e.ctx, broker.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(e.ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, k := range info.State.Subjects {
		n += k
	}
	if n == 0 {
		return nil
	}
	cons, err := e.js.OrderedConsumer(e.ctx, broker.AlertsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, n)
	for range n {
		msg, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
		if err != nil {
			t.Fatalf("alert %d of %d under %s: %v", len(out)+1, n, filter, err)
		}
		var al alerter.Alert
		if err := json.Unmarshal(msg.Data(), &al); err != nil {
			t.Fatalf("alert payload %s: %v", msg.Data(), err)
		}
		out = append(out, msg.Subject()+" "+string(al.State))
	}
	return out
}

// february seeds the figures of the domain note.
func (e *env) february(t *testing.T) {
	t.Helper()
	e.target(t, "17.71", "absolute", 67802, 0)
	e.target(t, "17", "absolute", 375000, 0)
	e.target(t, "18.71", "percent_of_recorded", 25, 767000)
	e.activations(t, "17.71", 12393)
	e.activations(t, "18.71", 90000)
}

func TestFebruary2023ReplayAlertsBengkuluProvinceOnly(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig())
	e.february(t)

	if got, want := e.view(t, "city", "17.71"), (viewRow{12393, 67802, 18.28, 12.05, false}); got != want {
		t.Errorf("Kota Bengkulu: got %+v want %+v", got, want)
	}
	// 25 % of 767,000 recorded, no enrolments yet: 191,750.
	if got, want := e.view(t, "city", "18.71"), (viewRow{90000, 191750, 46.94, 12.05, false}); got != want {
		t.Errorf("Kota Bandar Lampung: got %+v want %+v", got, want)
	}
	// The province counts its cities' residents: 12,393 of 375,000.
	if got, want := e.view(t, "province", "17"), (viewRow{12393, 375000, 3.3, 12.05, true}); got != want {
		t.Errorf("Bengkulu province: got %+v want %+v", got, want)
	}

	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	// 3.30 % < 12.05 / 2: critical; the projection (102,807) is far below 375,000.
	want := []string{"behind_pace/17/firing/critical", "projection/17/firing/warning"}
	if got := e.rows(t); !slices.Equal(got, want) {
		t.Fatalf("ikd.alerts: got %v want %v", got, want)
	}
	pub := e.published(t, broker.AlertsPrefix+".*.17.>")
	slices.Sort(pub)
	if wantPub := []string{"ikd.alerts.v1.critical.17._ firing", "ikd.alerts.v1.warning.17._ firing"}; !slices.Equal(pub, wantPub) {
		t.Fatalf("published: got %v want %v", pub, wantPub)
	}
	firing := a.Firing()
	if len(firing) != 2 || firing["behind_pace/17/2023"].Severity != alerter.Critical {
		t.Fatalf("firing: %+v", firing)
	}
	if al := firing["behind_pace/17/2023"]; al.AttainmentPct != 3.3 || al.ExpectedPct != 12.05 || al.Target != 375000 || al.Activated != 12393 || al.CityCode != "" {
		t.Errorf("alert figures: %+v", al)
	}

	// Evaluating again, and restarting, fire nothing twice.
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	b := e.alerter(t, testConfig())
	if len(b.Firing()) != 2 {
		t.Fatalf("restarted alerter lost the state: %+v", b.Firing())
	}
	if err := b.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t); !slices.Equal(got, want) {
		t.Fatalf("after re-evaluation and restart, ikd.alerts: got %v want %v", got, want)
	}
	if n := len(e.published(t, broker.AlertsPrefix+".>")); n != 2 {
		t.Fatalf("after restart %d alerts published, want 2", n)
	}
}

func TestRecoveryResolvesOnceAndTheHysteresisBandDoesNotFlap(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig())
	e.activations(t, "17.71", 12393)
	// Expected 12.05 %, margin 5: fires below 7.05 %, resolves at 9.05 % or more.
	steps := []struct {
		target uint64
		pct    float64
	}{
		{200000, 6.2},  // fires (warning: not below 6.025)
		{165000, 7.51}, // back above the edge, inside the band: still firing
		{200000, 6.2},  // below again: no second firing
		{165000, 7.51},
		{130000, 9.53}, // out of the band: resolves
		{130000, 9.53}, // stays resolved
		{165000, 7.51}, // inside the band from above: does not fire again
	}
	for i, s := range steps {
		e.target(t, "17.71", "absolute", float64(s.target), 0)
		if got := e.view(t, "city", "17.71"); got.AttainmentPct != s.pct {
			t.Fatalf("step %d: attainment %v want %v", i, got.AttainmentPct, s.pct)
		}
		if err := a.Evaluate(e.ctx, []string{"17.71"}); err != nil {
			t.Fatal(err)
		}
	}
	var pace []string
	for _, r := range e.rows(t) {
		if r[:len("behind_pace")] == "behind_pace" {
			pace = append(pace, r)
		}
	}
	if want := []string{"behind_pace/17.71/firing/warning", "behind_pace/17.71/resolved/warning"}; !slices.Equal(pace, want) {
		t.Fatalf("behind_pace rows: got %v want %v", pace, want)
	}
	pub := e.published(t, broker.AlertsPrefix+".*.17.71")
	if want := []string{"ikd.alerts.v1.warning.17.71 firing", "ikd.alerts.v1.warning.17.71 firing", "ikd.alerts.v1.warning.17.71 resolved"}; !slices.Equal(pub, want) {
		// behind_pace fired and resolved; projection fired and is still firing.
		t.Fatalf("published: got %v want %v", pub, want)
	}
	if _, ok := a.Firing()["behind_pace/17.71/2023"]; ok {
		t.Fatal("resolved alert still listed as firing")
	}
	// A restart after the resolution fires nothing.
	n := len(e.rows(t))
	b := e.alerter(t, testConfig())
	if err := b.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(e.rows(t)); got != n {
		t.Fatalf("restart wrote %d rows", got-n)
	}
}

func TestStaleRegionFiresAndTheNextActivationResolves(t *testing.T) {
	e := start(t)
	cfg := testConfig()
	a := e.alerter(t, cfg)
	e.target(t, "17.71", "absolute", 1000, 0)
	e.exec(t, `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
		VALUES ('s1', 'activation', 'r1', '17', '17.71', '17.71.01', 'OFF-01', 'counter', '2023-01-20 03:00:00', 1)`)
	if err := a.Evaluate(e.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Firing()["stale/17.71/2023"]; !ok {
		t.Fatalf("24 days without activation: firing %v", a.Firing())
	}
	e.exec(t, `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
		VALUES ('s2', 'activation', 'r2', '17', '17.71', '17.71.01', 'OFF-01', 'counter', '2023-02-12 03:00:00', 2)`)
	if err := a.Evaluate(e.ctx, []string{"17.71"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Firing()["stale/17.71/2023"]; ok {
		t.Fatal("stale alert still firing after an activation")
	}
	var stale []string
	for _, r := range e.rows(t) {
		if r[:5] == "stale" {
			stale = append(stale, r)
		}
	}
	if want := []string{"stale/17.71/firing/warning", "stale/17.71/resolved/warning"}; !slices.Equal(stale, want) {
		t.Fatalf("stale rows: %v", stale)
	}
}

func TestChangeAnnouncementTriggersEvaluation(t *testing.T) {
	e := start(t)
	a := e.alerter(t, testConfig()) // full evaluation only hourly
	e.runInBackground(t, a)
	waitFor(t, func() bool { return a.Stats.Evaluations.Load() >= 1 })
	e.target(t, "17", "absolute", 375000, 0)
	e.activations(t, "17.71", 12393)
	if _, err := e.js.Publish(e.ctx, broker.ChangesPrefix+".batch",
		[]byte(`{"cities":["17.71"],"years":[2023],"events":12393,"at":"2023-02-13T05:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(a.Firing()) == 2 })
	if al := a.Firing()["behind_pace/17/2023"]; al.Severity != alerter.Critical {
		t.Fatalf("firing: %+v", a.Firing())
	}
}

func TestFailingWebhookIsRetriedAndDoesNotHoldUpAlerts(t *testing.T) {
	e := start(t)
	var mu sync.Mutex
	requests := 0
	delivered := map[string]bool{}
	// The receiver answers nothing until the evaluation is over: an
	// evaluation that waited for it would never end.
	evaluated := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var al alerter.Alert
		_ = json.NewDecoder(r.Body).Decode(&al)
		<-evaluated
		mu.Lock()
		defer mu.Unlock()
		requests++
		if requests <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		delivered[al.Key()+" "+string(al.State)] = true
	}))
	t.Cleanup(srv.Close)
	release := sync.OnceFunc(func() { close(evaluated) })
	t.Cleanup(release) // before srv.Close, which waits for the handlers
	cfg := testConfig()
	cfg.WebhookURL = srv.URL
	a := e.alerter(t, cfg)
	e.february(t)
	done := make(chan error, 1)
	go func() { done <- a.Evaluate(e.ctx, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("evaluation waits for the webhook")
	}
	release()
	if n := len(e.published(t, broker.AlertsPrefix+".>")); n != 2 {
		t.Fatalf("published %d alerts while the webhook failed, want 2", n)
	}
	waitFor(t, func() bool { return a.Stats.WebhookDelivered.Load() == 2 })
	mu.Lock()
	defer mu.Unlock()
	if !delivered["behind_pace/17/2023 firing"] || !delivered["projection/17/2023 firing"] || requests != 5 {
		t.Fatalf("webhook got %d requests, delivered %v", requests, delivered)
	}
	if f := a.Stats.WebhookFailed.Load(); f != 0 {
		t.Fatalf("webhook failures given up: %d", f)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, testenv.Holds("the condition", cond))
}
