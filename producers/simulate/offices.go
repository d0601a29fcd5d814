package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/agent"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

// OfficesConfig says which offices to play behind their own office agents,
// and how their links to the data centre behave.
type OfficesConfig struct {
	Offices  int           // how many offices run an agent
	Rate     float64       // events per second at each office
	LinkUp   time.Duration // how long a link stays up before it drops
	LinkDown time.Duration // how long it stays down
	Dir      string        // each office's spool is Dir/<office id>
	Broker   string        // the broker's host:port
	Seed     int64
	// Dial connects an agent to the broker at url; the link's address
	// replaces the broker's.
	Dial func(url string) (*nats.Conn, error)
}

// officeSpoolBytes bounds each simulated office's spool: hours of its events.
const officeSpoolBytes = 64 << 20

// counterTick is how often a simulated counter application posts what its
// counters recorded since the last time.
const counterTick = 200 * time.Millisecond

// Offices plays offices whose counter applications post to their agents
// over HTTP while the agents' links drop and come back: what the agents
// accepted reaches the broker once the link is back, each event once.
type Offices struct {
	cfg     OfficesConfig
	logger  *slog.Logger
	offices []*simOffice
	calm    chan struct{} // closed by Calm
	calmed  sync.Once
}

// simOffice is one office: its agent, its link and its counter application.
type simOffice struct {
	id    string
	spool *spool.Spool
	agent *agent.Agent
	ln    net.Listener
	link  *Link
	gen   *generator

	accepted atomic.Int64 // events its agent answered 202 for
	drops    atomic.Int64 // times its link dropped and came back
}

// OfficeState is what one simulated office shows.
type OfficeState struct {
	OfficeID string
	LinkUp   bool
	Drops    int64 // times the link dropped and came back
	Accepted int64 // events the agent accepted from the counter application
	Agent    agent.Status
}

// NewOffices opens each office's spool and link; Run starts them.
func NewOffices(cfg OfficesConfig, builder *events.Builder, logger *slog.Logger) (*Offices, error) {
	if cfg.Offices <= 0 || cfg.Rate <= 0 || cfg.LinkUp <= 0 || cfg.LinkDown <= 0 || cfg.Dial == nil {
		return nil, fmt.Errorf("simulate offices: want offices, rate, link up and down times and a dialer, got %+v", cfg)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Offices{cfg: cfg, logger: logger, calm: make(chan struct{})}
	cities := builder.Ref.Cities()
	for i := range cfg.Offices {
		city := cities[i*len(cities)/cfg.Offices]
		id := strings.ReplaceAll(city.Code, ".", "") + "-AGENT-01"
		off, err := o.newOffice(id, i, builder)
		if err != nil {
			o.close()
			return nil, err
		}
		o.offices = append(o.offices, off)
	}
	return o, nil
}

func (o *Offices) newOffice(id string, i int, builder *events.Builder) (*simOffice, error) {
	gen, err := newGenerator(builder.Ref, o.cfg.Seed+int64(i))
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.cfg.Dir, id)
	sp, err := spool.Open(dir, officeSpoolBytes, o.logger)
	if err != nil {
		return nil, err
	}
	off := &simOffice{id: id, spool: sp, gen: gen}
	if off.link, err = NewLink(o.cfg.Broker); err != nil {
		sp.Close()
		return nil, err
	}
	if off.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		off.link.Close()
		sp.Close()
		return nil, err
	}
	acfg := agent.Config{OfficeID: id, Listen: off.ln.Addr().String(), SpoolDir: dir, SpoolLimitBytes: officeSpoolBytes, MaxBodyBytes: 8 << 20}
	url := "nats://" + off.link.Addr()
	off.agent = agent.New(acfg, sp, &intake.Office{Builder: builder, OfficeID: id}, func() (*nats.Conn, error) { return o.cfg.Dial(url) }, o.logger)
	return off, nil
}

// Run runs every office until ctx ends, then closes their spools and links.
func (o *Offices) Run(ctx context.Context) error {
	defer o.close()
	errs := make(chan error, len(o.offices))
	var wg sync.WaitGroup
	for i, off := range o.offices {
		wg.Go(func() { errs <- off.agent.Run(ctx, off.ln) })
		wg.Go(func() { o.post(ctx, off) })
		wg.Go(func() { o.flap(ctx, off, i) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Calm stops the counters and the link drops and restores every link, so
// that the agents forward what they hold.
func (o *Offices) Calm() {
	o.calmed.Do(func() { close(o.calm) })
}

// States returns each office's state.
func (o *Offices) States() []OfficeState {
	out := make([]OfficeState, len(o.offices))
	for i, off := range o.offices {
		out[i] = OfficeState{OfficeID: off.id, LinkUp: off.link.Up(), Drops: off.drops.Load(), Accepted: off.accepted.Load(), Agent: off.agent.Status()}
	}
	return out
}

func (o *Offices) close() {
	for _, off := range o.offices {
		off.link.Close()
		off.ln.Close()
		off.spool.Close()
	}
}

// post is the office's counter application: each tick it posts the lines
// its counters recorded, and keeps those the agent could not take (503,
// 507) to post again, as a counter application should.
func (o *Offices) post(ctx context.Context, off *simOffice) {
	t := time.NewTicker(counterTick)
	defer t.Stop()
	start, made := time.Now(), 0
	var pending [][]byte
	client := &http.Client{Timeout: 30 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.calm:
			return
		case now := <-t.C:
			due := int(o.cfg.Rate*now.Sub(start).Seconds()) - made
			for k := range due {
				// Spread over the tick, so that each line has its own time.
				at := now.Add(-counterTick + time.Duration(k+1)*counterTick/time.Duration(due))
				pending = append(pending, off.gen.lineAt(off.id, at))
			}
			made += max(due, 0)
			if len(pending) == 0 {
				continue
			}
			done, accepted, err := postLines(ctx, client, "http://"+off.ln.Addr().String(), pending)
			if err != nil {
				o.logger.Debug("counter application: the agent did not take the events; keeping them", "office", off.id, "err", err)
			}
			off.accepted.Add(int64(accepted))
			pending = pending[done:]
		}
	}
}

// postLines posts lines to the agent at base and returns how many of the
// first lines are done with, and how many of those the agent accepted: all
// of them on 202; on 400 all, the invalid ones never pass; on 507 those up to
// the last accepted, the rest to be sent again.
func postLines(ctx context.Context, client *http.Client, base string, lines [][]byte) (done, accepted int, err error) {
	body := bytes.Join(lines, []byte("\n"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var r agent.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, 0, fmt.Errorf("agent answered %s: %w", resp.Status, err)
	}
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusBadRequest:
		return len(lines), len(r.Accepted), nil
	case http.StatusInsufficientStorage:
		if len(r.Accepted) > 0 {
			done = r.Accepted[len(r.Accepted)-1].Line // the lines are numbered from 1, none blank
		}
		return done, len(r.Accepted), fmt.Errorf("agent answered %s: %s", resp.Status, r.Error)
	default:
		return 0, 0, fmt.Errorf("agent answered %s: %s", resp.Status, r.Error)
	}
}

// flap drops the office's link now and then; offices drop at different
// times.
func (o *Offices) flap(ctx context.Context, off *simOffice, i int) {
	stagger := o.cfg.LinkUp * time.Duration(i) / time.Duration(len(o.offices))
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-o.calm:
			return false
		case <-t.C:
			return true
		}
	}
	defer off.link.Restore()
	for wait(o.cfg.LinkUp + stagger) {
		stagger = 0
		off.link.Cut()
		o.logger.Warn("simulated office link down; its agent keeps taking events", "office", off.id, "for", o.cfg.LinkDown)
		if !wait(o.cfg.LinkDown) {
			return
		}
		off.link.Restore()
		off.drops.Add(1)
		o.logger.Info("simulated office link back", "office", off.id, "waiting_events", off.spool.Stats().WaitingEvents)
	}
}
