package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/producers/simulate"
)

// The offices behind office agents, besides the simulator that publishes
// straight to the broker: their links drop and come back, and nothing they
// accepted is lost.
var (
	agentOffices  = flag.Int("agent-offices", 3, "simulated offices posting to their own office agents, whose links drop and come back; 0 turns them off")
	agentRate     = flag.Float64("agent-rate", 5, "events per second at each office behind an agent")
	agentLinkUp   = flag.Duration("agent-link-up", 40*time.Second, "how long an office's link stays up before it drops")
	agentLinkDown = flag.Duration("agent-link-down", 20*time.Second, "how long an office's link stays down")
)

// officesReportEvery is how often the offices' state is logged.
const officesReportEvery = 15 * time.Second

// runOffices runs the offices behind agents until ctx ends, their spools in
// the data directory, pseudonymising with key, and logs their state now and
// then.
func runOffices(ctx context.Context, cfg Config, key []byte, natsURL string, auth broker.Auth, logger *slog.Logger) error {
	if *agentOffices <= 0 {
		return nil
	}
	builder, err := officeBuilder(key)
	if err != nil {
		return err
	}
	u, err := url.Parse(natsURL)
	if err != nil {
		return fmt.Errorf("offices: broker URL %s: %w", natsURL, err)
	}
	quiet := slog.New(atLeast{logger.Handler(), slog.LevelError})
	offices, err := simulate.NewOffices(simulate.OfficesConfig{
		Offices: *agentOffices, Rate: *agentRate, LinkUp: *agentLinkUp, LinkDown: *agentLinkDown,
		Dir: filepath.Join(cfg.DataDir, "offices"), Broker: u.Host, Seed: time.Now().UnixNano(),
		Dial: func(url string) (*nats.Conn, error) { return broker.Connect(url, "ikd-dev-office", auth, quiet) },
	}, builder, logger)
	if err != nil {
		return err
	}
	go reportOffices(ctx, offices, logger)
	return offices.Run(ctx)
}

func officeBuilder(key []byte) (*events.Builder, error) {
	pseudonyms, err := nik.NewPseudonymizer(key)
	if err != nil {
		return nil, fmt.Errorf("IKD_PSEUDONYM_KEY: %w", err)
	}
	ref, err := region.Load()
	if err != nil {
		return nil, err
	}
	return &events.Builder{Ref: ref, Pseudonyms: pseudonyms, Now: time.Now, FutureTolerance: time.Minute}, nil
}

// reportOffices logs, for each office, its link, what waits in its agent's
// spool and what it accepted and forwarded.
func reportOffices(ctx context.Context, offices *simulate.Offices, logger *slog.Logger) {
	t := time.NewTicker(officesReportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var parts []string
		for _, s := range offices.States() {
			link := "up"
			if !s.LinkUp {
				link = "DOWN"
			}
			parts = append(parts, fmt.Sprintf("%s link %s, waiting %d, accepted %d, forwarded %d, drops %d",
				s.OfficeID, link, s.Agent.WaitingEvents, s.Accepted, s.Agent.ForwardedTotal, s.Drops))
		}
		logger.Info("offices behind agents: " + strings.Join(parts, "; "))
	}
}
