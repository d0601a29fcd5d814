// Package observe is how a long-running program says how it is doing: its
// own Prometheus registry served at /metrics, /healthz (the process answers)
// and /readyz (every check the program named passes: broker connected,
// warehouse reachable, consumer bound), on IKD_METRICS_LISTEN.
package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// probeTimeout bounds one check, so that a hung broker or warehouse makes a
// scrape or a readiness probe answer "not ready" in time instead of hanging.
const probeTimeout = 2 * time.Second

// resultsFor is how long check results are reused: one scrape reads several
// metrics from the same checks, and a probe storm must not reach the warehouse.
const resultsFor = time.Second

// Probe tells whether one thing the program needs works now.
type Probe func(ctx context.Context) error

// Server holds one program's registry and readiness checks. The zero value is
// not usable; create it with New.
type Server struct {
	reg     *prometheus.Registry
	program string

	mu       sync.Mutex
	started  bool
	checks   []check
	results  map[string]error
	resultAt time.Time
	now      func() time.Time
}

type check struct {
	name  string
	kind  string // what the check's own gauge is: "", "warehouse", "broker" or "consumer"
	probe Probe
	// consumer is set for a consumer's check; its probe fills info.
	consumer *consumerState
}

// New returns program's server with its own registry (never the global
// default one, so that tests and ikd-dev's several components cannot
// collide), holding the Go runtime's and the process's collectors and the
// readiness metrics, whose ikd_ready names the program.
func New(program string) *Server {
	s := &Server{reg: prometheus.NewRegistry(), program: program, now: time.Now}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		(*readiness)(s),
	)
	return s
}

// Registry is where the program's components register their collectors.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// MustRegister registers collectors, panicking on a name collision: that is
// a programming error found by the first test that starts the program.
func (s *Server) MustRegister(cs ...prometheus.Collector) { s.reg.MustRegister(cs...) }

// Check adds a readiness check.
func (s *Server) Check(name string, probe Probe) { s.add(check{name: name, probe: probe}) }

// Warehouse adds the check that the warehouse answers, also exported as
// ikd_warehouse_reachable.
func (s *Server) Warehouse(ping Probe) {
	s.add(check{name: "warehouse", kind: "warehouse", probe: ping})
}

// Started says that the program finished starting: until then /readyz
// answers 503 whatever the checks say, since its consumers are not bound yet.
func (s *Server) Started() {
	s.mu.Lock()
	s.started = true
	s.resultAt = time.Time{}
	s.mu.Unlock()
}

func (s *Server) add(c check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
	s.resultAt = time.Time{}
}

// Readiness runs the checks (or reuses results of the last second) and
// returns whether the program is started and every check passed, with each
// check's error by name.
func (s *Server) Readiness(ctx context.Context) (bool, map[string]error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resultAt.IsZero() || s.now().Sub(s.resultAt) >= resultsFor {
		s.results = runChecks(ctx, s.checks)
		s.resultAt = s.now()
	}
	ready := s.started
	for _, err := range s.results {
		ready = ready && err == nil
	}
	return ready, s.results
}

// runChecks runs every check at once, each bounded by probeTimeout.
func runChecks(ctx context.Context, checks []check) map[string]error {
	results := make(map[string]error, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			err := c.probe(pctx)
			mu.Lock()
			results[c.name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// Handler serves /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Route(mux)
	return mux
}

// Route adds /metrics, /healthz and /readyz to mux, for a program that serves
// them beside its own endpoints (the office agent, on its intake address).
func (s *Server) Route(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
}

// readyz answers 200 when ready, else 503; either way one line per check.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ready, results := s.Readiness(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, describe(ready, s.isStarted(), results))
}

func (s *Server) isStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// describe is /readyz's body: the verdict, then each check, sorted.
func describe(ready, started bool, results map[string]error) string {
	var b strings.Builder
	switch {
	case ready:
		b.WriteString("ready\n")
	case !started:
		b.WriteString("not ready: starting\n")
	default:
		b.WriteString("not ready\n")
	}
	for _, name := range slices.Sorted(maps.Keys(results)) {
		if err := results[name]; err != nil {
			fmt.Fprintf(&b, "%s: %v\n", name, err)
		} else {
			fmt.Fprintf(&b, "%s: ok\n", name)
		}
	}
	return b.String()
}

// Serve listens on addr now, so that a taken port fails the start, and serves
// the handler until ctx ends. It returns the address it listens on.
func (s *Server) Serve(ctx context.Context, addr string, logger *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("IKD_METRICS_LISTEN: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics endpoint stopped", "listen", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("metrics served", "url", "http://"+ln.Addr().String()+"/metrics", "ready", "http://"+ln.Addr().String()+"/readyz")
	return ln.Addr().String(), nil
}
