// Package faults_test runs the aggregator and the broker (nats-server) as
// real processes against the test warehouse, injects faults (SIGKILL of an
// aggregator and of the broker, several consumers, warehouse outage,
// republish outside the duplicate window) and checks that the views hold exactly the expected
// unique residents and that reconcile finds nothing.
//
// `go test -short` drives a few thousand events per fault; IKD_CHAOS=1 drives
// 100,000 (make chaos).
package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/consumers/reconcile"
	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func chaos() bool { return os.Getenv("IKD_CHAOS") == "1" }

// eventCount is how many events each fault drives.
func eventCount() int {
	if chaos() {
		return 100_000
	}
	if testing.Short() {
		return 6_000
	}
	return 20_000
}

// ---- the aggregator binary ----

// binary builds ikd-aggregator once per test run.
func binary(t *testing.T) string {
	t.Helper()
	return testenv.Program(t, "github.com/ikd-pipeline/ikd/consumers/ikd-aggregator")
}

// ---- the environment of one fault ----

type env struct {
	t        *testing.T
	dir      string // broker store
	port     int
	brokerMu sync.Mutex
	broker   *brokerProc
	nc       *nats.Conn
	js       jetstream.JetStream
	conn     driver.Conn
	dsn      string // what the aggregator processes are given
	extraEnv []string
	streams  broker.StreamOptions
}

// newEnv starts a broker on a free port and empties the warehouse.
func newEnv(t *testing.T, streams broker.StreamOptions) *env {
	t.Helper()
	e := &env{t: t, dir: testenv.StoreDir(t), port: testenv.FreePort(t), streams: streams}
	e.broker = startBroker(t, e.dir, e.port)
	// killBroker replaces the broker; stop whichever is running.
	t.Cleanup(func() {
		e.brokerMu.Lock()
		defer e.brokerMu.Unlock()
		e.broker.kill()
	})
	e.nc = testenv.Connect(t, e.url())
	e.js = testenv.Provision(t, e.nc, streams)
	e.dsn = testenv.WarehouseDSN(t)
	e.conn = testenv.Warehouse(t)
	return e
}

func (e *env) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", e.port) }

// killBroker SIGKILLs the broker, leaves it down until noticed holds (its
// clients have seen it go), and starts it again on the same store directory
// and port.
func (e *env) killBroker(noticed func() error) {
	e.t.Helper()
	e.brokerMu.Lock()
	defer e.brokerMu.Unlock()
	e.broker.kill()
	testenv.Eventually(e.t, time.Minute, noticed)
	e.broker = startBroker(e.t, e.dir, e.port)
}

// ---- aggregator processes ----

type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Keep the tail only: a long run logs a lot.
	if l.b.Len() > 1<<20 {
		rest := bytes.Clone(l.b.Bytes()[l.b.Len()-(1<<19):])
		l.b.Reset()
		l.b.Write(rest)
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// processEnv is the environment of an aggregator process: it connects as
// role, the aggregator's own or the admin's for the operator subcommands.
func (e *env) processEnv(role broker.Role) []string {
	env := os.Environ()
	for k, v := range testenv.BrokerEnv(e.url(), role) {
		env = append(env, k+"="+v)
	}
	env = append(env,
		"IKD_CLICKHOUSE_DSN="+e.dsn,
		"IKD_AGGREGATOR_BATCH_SIZE=500",
		"IKD_AGGREGATOR_FLUSH_INTERVAL=50ms",
		// Messages a killed process held come back after AckWait.
		"IKD_AGGREGATOR_ACK_WAIT=3s",
		"IKD_AGGREGATOR_RETRY_MAX_INTERVAL=1s",
		// A replacement of a killed aggregator waits this long for the lease.
		"IKD_AGGREGATOR_LEASE_TTL=2s",
		// Several aggregators run at once, beside other tests.
		"IKD_METRICS_LISTEN=127.0.0.1:0",
	)
	if e.streams.DuplicateWindow > 0 {
		env = append(env, "IKD_STREAM_DUPLICATE_WINDOW="+e.streams.DuplicateWindow.String())
	}
	return append(env, e.extraEnv...)
}

// start runs one aggregator process (no subcommand).
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(binary(e.t), args...)
	cmd.Env = e.processEnv(broker.RoleAggregator)
	p := &proc{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	e.t.Cleanup(func() { p.stop() })
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
}

// stop ends the process with SIGTERM (SIGKILL after 10s).
func (p *proc) stop() {
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

func (p *proc) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ---- events ----

// dataset is the events of one fault and the residents they must count.
type dataset struct {
	events []events.Event
	// expected unique residents by city and year (WIB)
	activated map[cityYear]map[string]bool
	enrolled  map[cityYear]map[string]bool
	ids       map[string]bool
}

type cityYear struct {
	city string
	year int
}

// makeDataset builds n valid events over many cities: enrolments, activations,
// reactivations (a resident activating again, counted once) and residents
// served away from home (counted in their domicile city).
func makeDataset(t *testing.T, n int, seed uint64) *dataset {
	t.Helper()
	now := time.Now()
	b := testenv.Builder(t)
	b.Now = func() time.Time { return now }
	ref := b.Ref
	rng := rand.New(rand.NewPCG(seed, 42))
	var cities []region.City
	for _, c := range ref.Cities() {
		if len(ref.DistrictsOf(c.Code)) > 0 {
			cities = append(cities, c)
		}
	}
	rng.Shuffle(len(cities), func(i, j int) { cities[i], cities[j] = cities[j], cities[i] })
	cities = cities[:min(len(cities), 120)]

	d := &dataset{activated: map[cityYear]map[string]bool{}, enrolled: map[cityYear]map[string]bool{}, ids: map[string]bool{}}
	type resident struct {
		nik  string
		city region.City
	}
	var people []resident
	newResident := func() resident {
		c := cities[rng.IntN(len(cities))]
		ds := ref.DistrictsOf(c.Code)
		dist := ds[rng.IntN(len(ds))]
		serial := 1 + len(people)%9999
		birth := time.Date(1950+rng.IntN(55), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		r := resident{nik: nik.Format(c.ProvinceCode, c.Code, dist.Code, birth, rng.IntN(2) == 0, serial), city: c}
		people = append(people, r)
		return r
	}
	add := func(typ events.Type, r resident, office string, at time.Time) {
		line := fmt.Sprintf(`{"type":%q,"nik":%q,"office_id":%q,"occurred_at":%q,"channel":%q}`,
			typ, r.nik, office, at.Format(time.RFC3339Nano), []string{"counter", "outreach"}[rng.IntN(2)])
		ev, err := b.Build([]byte(line))
		if err != nil {
			t.Fatalf("build %s: %v", line, err)
		}
		if d.ids[ev.EventID] {
			return // the same line twice: one event
		}
		d.ids[ev.EventID] = true
		d.events = append(d.events, ev)
		k := cityYear{ev.CityCode, ev.OccurredAt.In(events.WIB).Year()}
		set := d.activated
		if typ == events.TypeEnrolment {
			set = d.enrolled
		}
		if set[k] == nil {
			set[k] = map[string]bool{}
		}
		set[k][ev.Resident] = true
	}
	for len(d.events) < n {
		var r resident
		if len(people) > 0 && rng.IntN(5) == 0 {
			r = people[rng.IntN(len(people))] // an earlier resident comes back: reactivation
		} else {
			r = newResident()
		}
		office := r.city.Code + "-OFFICE-" + strconv.Itoa(rng.IntN(3))
		if rng.IntN(6) == 0 {
			office = cities[rng.IntN(len(cities))].Code + "-AWAY" // served away from home
		}
		// Within the last 300 days, so some events fall in the previous year.
		at := now.Add(-time.Duration(rng.Int64N(int64(300 * 24 * time.Hour)))).Add(-time.Hour).Truncate(time.Millisecond)
		typ := events.TypeActivation
		if rng.IntN(3) == 0 {
			typ = events.TypeEnrolment
		}
		add(typ, r, office, at)
	}
	return d
}

// publish sends evs with producers/publish, in chunks.
func (e *env) publish(ctx context.Context, evs []events.Event) publish.Result {
	e.t.Helper()
	p, err := publish.New(e.nc, publish.Options{RetryFor: 2 * time.Minute}, testenv.Quiet)
	if err != nil {
		e.t.Fatal(err)
	}
	var total publish.Result
	for i := 0; i < len(evs); i += 2000 {
		res, err := p.Publish(ctx, evs[i:min(i+2000, len(evs))])
		if err != nil {
			e.t.Errorf("publish: %v", err)
			return total
		}
		total.Published += res.Published
		total.Duplicates += res.Duplicates
	}
	return total
}

// ---- checks ----

func (e *env) count(sql string) uint64 {
	e.t.Helper()
	var n uint64
	if err := e.conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *env) distinctEvents() uint64 {
	var n uint64
	if err := e.conn.QueryRow(context.Background(), "SELECT uniqExact(event_id) FROM ikd.events").Scan(&n); err != nil {
		return 0 // the schema may not be there yet
	}
	return n
}

// drained waits until the warehouse holds want distinct events and the
// durable consumer has nothing pending.
func (e *env) drained(want int, timeout time.Duration) {
	e.t.Helper()
	testenv.Eventually(e.t, timeout, func() error {
		got := e.distinctEvents()
		pending, ackPending := uint64(0), 0
		if c, err := e.js.Consumer(context.Background(), broker.EventsStream, "ikd-aggregator"); err == nil {
			if ci, err := c.Info(context.Background()); err == nil {
				pending, ackPending = ci.NumPending, ci.NumAckPending
			}
		}
		if got == uint64(want) && pending == 0 && ackPending == 0 {
			return nil
		}
		return fmt.Errorf("warehouse holds %d distinct events of %d; consumer pending %d, ack pending %d", got, want, pending, ackPending)
	})
}

// checkViews compares the views with the expected residents per city and year.
func (e *env) checkViews(d *dataset) (activated, enrolled uint64) {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(),
		"SELECT toInt64(year), city_code, toUInt64(activated), toUInt64(enrolled) FROM ikd.attainment_city WHERE activated > 0 OR enrolled > 0")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	seen := map[cityYear]bool{}
	bad := 0
	for rows.Next() {
		var year int64
		var city string
		var act, enr uint64
		if err := rows.Scan(&year, &city, &act, &enr); err != nil {
			e.t.Fatal(err)
		}
		k := cityYear{city, int(year)}
		seen[k] = true
		activated += act
		enrolled += enr
		if act != uint64(len(d.activated[k])) || enr != uint64(len(d.enrolled[k])) {
			if bad++; bad <= 10 {
				e.t.Errorf("city %s year %d: activated %d enrolled %d, want %d and %d", city, year, act, enr, len(d.activated[k]), len(d.enrolled[k]))
			}
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	var wantAct, wantEnr int
	for k, s := range d.activated {
		wantAct += len(s)
		if !seen[k] {
			e.t.Errorf("city %s year %d: missing from the views (want %d activated)", k.city, k.year, len(s))
		}
	}
	for k, s := range d.enrolled {
		wantEnr += len(s)
		if !seen[k] {
			e.t.Errorf("city %s year %d: missing from the views (want %d enrolled)", k.city, k.year, len(s))
		}
	}
	if activated != uint64(wantAct) || enrolled != uint64(wantEnr) {
		e.t.Errorf("views total activated %d enrolled %d, want %d and %d", activated, enrolled, wantAct, wantEnr)
	}
	return activated, enrolled
}

// checkReconcile runs reconcile in the test and as the CLI subcommand.
func (e *env) checkReconcile() reconcile.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := reconcile.Reconcile(ctx, e.js, e.conn, reconcile.Options{Durable: "ikd-aggregator"})
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	if !rep.Clean() {
		var b bytes.Buffer
		_ = rep.Print(&b, false)
		e.t.Errorf("reconcile found differences:\n%s", tail(b.String(), 4000))
	}
	cmd := exec.CommandContext(ctx, binary(e.t), "reconcile")
	cmd.Env = e.processEnv(broker.RoleAdmin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Errorf("ikd-aggregator reconcile: %v\n%s", err, tail(string(out), 3000))
	}
	return rep
}

// verify runs every end check and logs the numbers.
func (e *env) verify(name string, d *dataset, faults string) {
	e.t.Helper()
	act, enr := e.checkViews(d)
	rep := e.checkReconcile()
	rows := e.count("SELECT count() FROM ikd.events")
	var brokerIDs, whIDs int
	for _, s := range rep.Subjects {
		brokerIDs += s.Broker
		whIDs += s.Warehouse
	}
	e.t.Logf("%s: events driven %d; %s; warehouse rows %d, distinct events %d; views activated %d enrolled %d (expected %d/%d); reconcile: %d messages read, %d subjects, broker ids %d, warehouse ids %d, clean=%v",
		name, len(d.events), faults, rows, e.distinctEvents(), act, enr, total(d.activated), total(d.enrolled),
		rep.Messages, len(rep.Subjects), brokerIDs, whIDs, rep.Clean())
}

func total(m map[cityYear]map[string]bool) int {
	n := 0
	for _, s := range m {
		n += len(s)
	}
	return n
}

// ---- a switchable TCP proxy in front of the warehouse ----

type proxy struct {
	t      *testing.T
	addr   string // where it listens
	target string
	mu     sync.Mutex
	l      net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p.on()
	t.Cleanup(p.off)
	return p
}

// on listens again on the same address.
func (p *proxy) on() {
	var l net.Listener
	testenv.Eventually(p.t, 30*time.Second, func() (err error) {
		l, err = net.Listen("tcp", p.addr)
		return err
	})
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

// off closes the listener and every open connection.
func (p *proxy) off() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) forward(c net.Conn) {
	if !p.track(c) {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(up) {
		c.Close()
		return
	}
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

func faultsf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
