package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/nik"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/producers/agent"
	"github.com/ikd-pipeline/ikd/producers/intake"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

// Step 8: the office agent's intake against the disk's own fsync rate.
var (
	agentOnly    = flag.Bool("agent-only", false, "run only step 8, the office agent (quick, one core's worth)")
	agentDur     = flag.Duration("agent-dur", 5*time.Second, "duration of each office agent measurement (step 8)")
	agentClients = flag.Int("agent-clients", 50, "concurrent HTTP clients posting to the office agent (step 8)")
)

const benchOffice = "1771-BENCH-01"

// agentStep measures, in dir, how many fsyncs a second the disk makes for
// one writer, then how many events a second the office agent accepts (202:
// fsynced in its spool) from agentClients clients posting at once, with
// one event and with ten per request, while it forwards to the broker at
// natsURL.
func agentStep(ctx context.Context, dir, natsURL string, auth broker.Auth, logger *slog.Logger) ([]Row, error) {
	log.Printf("step 8: disk fsync rate for %s", *agentDur)
	fsyncs, err := fsyncRate(filepath.Join(dir, "fsync-probe"), *agentDur)
	if err != nil {
		return nil, fmt.Errorf("fsync rate: %w", err)
	}
	rows := []Row{{Step: "8 disk fsync ceiling: append 300 B + fsync, one writer", Figure: fsyncs, Unit: "fsyncs/s", Goal: "-", Met: "-",
		Note: "the spool's disk, same run"}}
	log.Printf("step 8: %.0f fsyncs/s", fsyncs)
	for i, perRequest := range []int{1, 10} {
		res, err := agentIntake(ctx, filepath.Join(dir, fmt.Sprintf("agent-spool-%d", i)), natsURL, auth, perRequest, logger)
		if err != nil {
			return rows, err
		}
		rows = append(rows, Row{
			Step:   fmt.Sprintf("8 office agent: events accepted (202, fsynced), %d clients x %d event(s)/request", *agentClients, perRequest),
			Figure: res.events, Unit: "events/s", Ceiling: ptr(fsyncs), Ratio: ptr(res.events / fsyncs),
			Goal: ">= 1 x fsync rate", Met: yesNo(res.events >= fsyncs),
			Note: fmt.Sprintf("%.0f requests/s, p99 %.1f ms; group commit: %.1f events per spool fsync; forwarding to the broker meanwhile",
				res.requests, ms(res.p99), res.events/max(res.syncs, 1))})
		log.Printf("step 8: %d/request: %.0f events/s, %.0f requests/s", perRequest, res.events, res.requests)
	}
	return rows, nil
}

// fsyncRate appends small records to a file in path and fsyncs after each,
// for d, and returns fsyncs per second.
func fsyncRate(path string, d time.Duration) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	rec := bytes.Repeat([]byte("x"), 300)
	n, start := 0, time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(rec); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type intakeResult struct {
	events, requests float64       // per second
	syncs            float64       // spool fsyncs per second
	p99              time.Duration // request latency
}

// agentIntake runs an office agent on spoolDir and has the clients post
// perRequest events a request for agentDur.
func agentIntake(ctx context.Context, spoolDir, natsURL string, auth broker.Auth, perRequest int, logger *slog.Logger) (intakeResult, error) {
	ref, err := region.Load()
	if err != nil {
		return intakeResult{}, err
	}
	ps, err := nik.NewPseudonymizer([]byte(nik.DevelopmentKey))
	if err != nil {
		return intakeResult{}, err
	}
	builder := &events.Builder{Ref: ref, Pseudonyms: ps, Now: time.Now, FutureTolerance: 10 * time.Minute}
	sp, err := spool.Open(spoolDir, 1<<30, logger)
	if err != nil {
		return intakeResult{}, err
	}
	defer sp.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return intakeResult{}, err
	}
	cfg := agent.Config{OfficeID: benchOffice, Listen: ln.Addr().String(), SpoolDir: spoolDir, SpoolLimitBytes: 1 << 30, MaxBodyBytes: 8 << 20}
	dial := func() (*nats.Conn, error) { return broker.Connect(natsURL, "ikd-bench-agent", auth, logger) }
	a := agent.New(cfg, sp, &intake.Office{Builder: builder, OfficeID: benchOffice}, dial, logger)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx, ln) }()
	defer func() { stop(); <-done }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *agentClients}}
	url := "http://" + ln.Addr().String() + "/v1/events"
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(*agentDur)
	var wg sync.WaitGroup
	start := time.Now()
	for range *agentClients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				first := int(next.Add(int64(perRequest))) - perRequest
				t0 := time.Now()
				if err := postInput(client, url, first, perRequest); err != nil {
					failed.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		return intakeResult{}, fmt.Errorf("office agent: %d requests failed", failed.Load())
	}
	st := a.Status()
	return intakeResult{
		events:   float64(st.AcceptedTotal) / elapsed.Seconds(),
		requests: float64(len(lat)) / elapsed.Seconds(),
		syncs:    float64(sp.Stats().Syncs) / elapsed.Seconds(),
		p99:      percentile(lat, 0.99),
	}, nil
}

// postInput posts n input lines, residents first..first+n-1, each a
// different valid NIK, and fails unless all were accepted.
func postInput(client *http.Client, url string, first, n int) error {
	var body bytes.Buffer
	at := time.Now().Add(-time.Hour).Format(time.RFC3339)
	for i := first; i < first+n; i++ {
		// Day 1-28, month 1-12, year 1950-1999, serial 1-9999: distinct NIKs.
		number := fmt.Sprintf("177101%02d%02d%02d%04d", 1+i%28, 1+i/28%12, 50+i/336%50, 1+i/16800%9999)
		fmt.Fprintf(&body, `{"type":"activation","nik":%q,"occurred_at":%q}`+"\n", number, at)
	}
	resp, err := client.Post(url, "application/x-ndjson", &body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
