// Package agent is the office agent: a long-running program on an office's
// machine that takes events from any counter application over local HTTP,
// answers once they are durable in the office's spool, and forwards them to
// the broker in order, resuming by itself after the link comes back.
//
// Nothing leaves the spool before the broker acknowledged it, so an event the
// agent accepted survives the link's outages and the agent's own crashes. An
// event sent twice, by a retrying counter application or by a resend after a
// crash, keeps its event id and counts once: the broker drops the second copy
// within its duplicate window, and the warehouse counts events as sets.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/observe"
	"github.com/ikd-pipeline/ikd/internal/retry"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/publish"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

// Config is the agent's part of ikd-counter's configuration.
type Config struct {
	// OfficeID is the office this agent serves: events without an office_id
	// get it, events of another office are rejected.
	OfficeID string `envconfig:"OFFICE_ID"`
	// Listen is where the HTTP endpoint listens: loopback by default, as the
	// counter applications run on the same machine.
	Listen string `envconfig:"AGENT_LISTEN" default:"127.0.0.1:8470"`
	// SpoolDir holds the events not yet acknowledged by the broker.
	SpoolDir string `envconfig:"SPOOL_DIR"`
	// SpoolLimitBytes bounds them: 1 GiB is millions of events, days of an
	// office's work without a link.
	SpoolLimitBytes int64 `envconfig:"SPOOL_LIMIT_BYTES" default:"1073741824"`
	// MaxBodyBytes bounds one request.
	MaxBodyBytes int64 `envconfig:"AGENT_MAX_BODY_BYTES" default:"8388608"`
}

// Validate checks what serve needs, naming the variable at fault.
func (c Config) Validate() error {
	var errs []error
	if c.OfficeID == "" || strings.ContainsAny(c.OfficeID, " \t\r\n\"") {
		errs = append(errs, fmt.Errorf("IKD_OFFICE_ID: want the office's id, such as 3171-DKI-01, got %q", c.OfficeID))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("IKD_AGENT_LISTEN: want host:port, such as 127.0.0.1:8470: %w", err))
	}
	if c.SpoolDir == "" {
		errs = append(errs, errors.New("IKD_SPOOL_DIR: the agent needs a spool directory"))
	}
	if c.SpoolLimitBytes <= 0 {
		errs = append(errs, fmt.Errorf("IKD_SPOOL_LIMIT_BYTES: want a positive number of bytes, got %d", c.SpoolLimitBytes))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("IKD_AGENT_MAX_BODY_BYTES: want a positive number of bytes, got %d", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// Dialer connects to the broker with the office's credentials, once.
type Dialer func() (*nats.Conn, error)

const (
	// While the broker cannot be reached at start, tries settle at one
	// every few seconds: an office may start its day without a link.
	dialInitial = 200 * time.Millisecond
	dialMax     = 5 * time.Second

	// forwardRetryFor is how long one attempt to forward keeps resending
	// before the spool takes over the retrying; short, so that the status
	// soon says that the link is down.
	forwardRetryFor = 5 * time.Second

	// shutdownWait bounds how long a stop waits for requests in flight,
	// which end once their events are synced.
	shutdownWait = 10 * time.Second
)

// dialPolicy never gives up: the agent keeps taking events into the spool
// while it waits for the broker.
var dialPolicy = retry.Policy{Initial: dialInitial, Max: dialMax, Jitter: 0.5}

// Agent serves one office. Create it with New and start it with Run.
type Agent struct {
	cfg    Config
	spool  *spool.Spool
	office *intake.Office
	dial   Dialer
	logger *slog.Logger // the agent's, with its office
	base   *slog.Logger // for the parts it runs, which name themselves
	now    func() time.Time

	stopping atomic.Bool
	nc       atomic.Pointer[nats.Conn]
	dialErr  atomic.Pointer[string] // why the broker was not reached yet
	fatal    chan error
	counts   counts
	obsOnce  sync.Once
	obs      *observe.Server
}

// counts are the agent's totals since it started.
type counts struct {
	accepted, invalid, refusedFull atomic.Int64
}

// New returns an agent that appends to sp, which the caller opens and
// closes, and forwards with connections from dial.
func New(cfg Config, sp *spool.Spool, office *intake.Office, dial Dialer, logger *slog.Logger) *Agent {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{
		cfg: cfg, spool: sp, office: office, dial: dial,
		logger: logger.With("component", "agent", "office", cfg.OfficeID),
		base:   logger,
		now:    time.Now,
		fatal:  make(chan error, 1),
	}
}

// Run serves HTTP on ln and forwards the spool until ctx ends, then stops
// taking events, lets the requests in flight finish and returns. It returns
// an error, after stopping, when the spool fails.
func (a *Agent) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fwdCtx, stopForwarding := context.WithCancel(context.Background())
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		a.forward(fwdCtx)
	}()
	a.logger.Info("office agent running", "listen", ln.Addr().String(), "spool", a.cfg.SpoolDir)

	var err error
	select {
	case <-ctx.Done():
	case err = <-a.fatal:
	case err = <-served:
		err = fmt.Errorf("agent: http: %w", err)
	}
	a.stopping.Store(true)
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil {
		a.logger.Warn("requests still running at stop", "err", serr)
	}
	stopForwarding()
	<-forwarded
	if nc := a.nc.Load(); nc != nil {
		nc.Close()
	}
	st := a.spool.Stats()
	a.logger.Info("office agent stopped", "waiting_events", st.WaitingEvents, "set_aside_events", st.SetAside)
	return err
}

// forward connects to the broker, retrying until it answers, and forwards the
// spool until ctx ends. The connection reconnects by itself after that.
func (a *Agent) forward(ctx context.Context) {
	nc := a.connect(ctx)
	if nc == nil {
		return
	}
	a.nc.Store(nc)
	pub, err := publish.New(nc, publish.Options{Ordered: true, RetryFor: forwardRetryFor}, a.base)
	if err == nil {
		err = a.spool.Run(ctx, pub)
	}
	if ctx.Err() == nil {
		a.failed(fmt.Errorf("agent: forwarding stopped: %w", err))
	}
}

// connect dials until the broker answers or ctx ends (then it returns nil).
func (a *Agent) connect(ctx context.Context) *nats.Conn {
	pause := dialPolicy.BackOff()
	for tries := 1; ; tries++ {
		nc, err := a.dial()
		if err == nil {
			if tries > 1 {
				a.logger.Info("connected to the broker", "tries", tries)
			}
			return nc
		}
		msg := err.Error()
		a.dialErr.Store(&msg)
		if tries == 1 {
			a.logger.Warn("cannot reach the broker; taking events into the spool and retrying", "err", err)
		}
		t := time.NewTimer(pause.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// failed stops the agent for good: after a failed write or fsync the spool
// must be opened again, which a restart by the service manager does.
func (a *Agent) failed(err error) {
	a.logger.Error("office agent stopping", "err", err)
	select {
	case a.fatal <- err:
	default:
	}
}
