package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// publishEvents publishes generated events through the project's Publisher
// (async, Nats-Msg-Id = event id, waits for every ack) from one goroutine per
// generator, in chunks, until n events (n > 0) or the deadline (non-zero).
func publishEvents(ctx context.Context, pub *publish.Publisher, gens []*generator, n int, deadline time.Time, chunk int) (int, error) {
	var claimed, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(gens))
	for _, g := range gens {
		wg.Add(1)
		go func(g *generator) {
			defer wg.Done()
			for ctx.Err() == nil {
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				k := chunk
				if n > 0 {
					start := claimed.Add(int64(chunk)) - int64(chunk)
					if start >= int64(n) {
						return
					}
					k = min(chunk, n-int(start))
				}
				res, err := pub.Publish(ctx, g.batch(k))
				done.Add(int64(res.Published + res.Duplicates))
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	return int(done.Load()), <-errs
}

func countEvents(ctx context.Context, conn driver.Conn) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM ikd.events").Scan(&n)
	return n, err
}

// waitCount polls count() of ikd.events until it reaches target.
func waitCount(ctx context.Context, conn driver.Conn, target uint64, every, timeout time.Duration) (time.Time, error) {
	end := time.Now().Add(timeout)
	for {
		n, err := countEvents(ctx, conn)
		if err != nil {
			return time.Time{}, err
		}
		if n >= target {
			return time.Now(), nil
		}
		if time.Now().After(end) {
			return time.Time{}, fmt.Errorf("ikd.events holds %d of %d after %s", n, target, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(every):
		}
	}
}

// freshness measures the time from a publish ack to the event being counted
// in ikd.attainment_city.
//
// Method: background events (never in the marker city) are published at a
// steady rate. Every probeEvery, one activation of a new resident of the
// marker city is published synchronously (Publisher.Publish returns on its
// ack), and the ack time of probe k (k = 1, 2, ...) is recorded. A poller
// queries ikd.attainment_city for the marker city's activated count in a
// loop; the single aggregator writes in stream order, so a count c >= base+k
// means probe k is counted. Probe k's latency is the completion time of the
// first poll that shows it minus its ack time: an upper bound, too high by
// at most one poll's duration (reported as poll_ms). Probing lasts dur, and
// longer (up to three times dur) until minProbes probes were acknowledged,
// as a probe's publication may wait behind the background's on a busy broker.
type freshResult struct {
	latencies []time.Duration // to the end of the first poll that showed the probe (upper bound)
	lower     []time.Duration // to the start of that poll (lower bound)
	probes    int
	bgRate    float64
	pollMean  time.Duration
	polls     int
}

func freshness(ctx context.Context, conn driver.Conn, pub, probePub *publish.Publisher, g *generator, marker *city, rate int, dur, probeEvery time.Duration, minProbes int) (freshResult, error) {
	var res freshResult
	const q = "SELECT activated FROM ikd.attainment_city WHERE city_code = ? AND year = toYear(now(), 'Asia/Jakarta')"
	activated := func() (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, q, marker.code).Scan(&n)
		return n, err
	}
	base, err := activated()
	if err != nil {
		return res, fmt.Errorf("marker baseline: %w", err)
	}

	var mu sync.Mutex
	var acks []time.Time
	stop := time.Now().Add(dur)
	hardStop := stop.Add(2 * dur)
	over := make(chan struct{}) // closed when probing ends
	var wg sync.WaitGroup
	errc := make(chan error, 3)

	// Background: publish what is due every 10 ms to hold the rate.
	var bgSent int
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
	loop:
		for now := range t.C {
			select {
			case <-over:
				break loop
			default:
			}
			if ctx.Err() != nil {
				break
			}
			due := int(float64(rate)*now.Sub(start).Seconds()) - bgSent
			if due <= 0 {
				continue
			}
			r, err := pub.Publish(ctx, g.batch(due))
			bgSent += r.Published + r.Duplicates
			if err != nil {
				errc <- err
				return
			}
		}
		res.bgRate = float64(bgSent) / time.Since(start).Seconds()
	}()

	// Probes.
	// Probes of a run are residents of their own, apart from an earlier run's.
	seed := uint64(7)
	for _, c := range g.prefix {
		seed = seed*31 + uint64(c)
	}
	pg := newGenerator("probe-"+g.prefix, seed, g.cities, g.ps)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(over)
		t := time.NewTicker(probeEvery)
		defer t.Stop()
		for now := range t.C {
			mu.Lock()
			enough := len(acks) >= minProbes
			mu.Unlock()
			if (now.After(stop) && enough) || now.After(hardStop) || ctx.Err() != nil {
				return
			}
			ev := pg.event(marker, events.TypeActivation, time.Now())
			if _, err := probePub.Publish(ctx, []events.Event{ev}); err != nil {
				errc <- err
				return
			}
			at := time.Now()
			mu.Lock()
			acks = append(acks, at)
			mu.Unlock()
		}
	}()

	// Poller: runs until every probe is seen, or 30 s after the last.
	seen := 0
	var pollTotal time.Duration
	var overAt time.Time
	for {
		t0 := time.Now()
		n, err := activated()
		end := time.Now()
		if err != nil {
			return res, fmt.Errorf("poll marker: %w", err)
		}
		res.polls++
		pollTotal += end.Sub(t0)
		mu.Lock()
		for seen < len(acks) && uint64(seen) < n-base {
			res.latencies = append(res.latencies, end.Sub(acks[seen]))
			res.lower = append(res.lower, max(0, t0.Sub(acks[seen])))
			seen++
		}
		total := len(acks)
		mu.Unlock()
		if overAt.IsZero() {
			select {
			case <-over:
				overAt = end
			default:
			}
		}
		if !overAt.IsZero() && (seen == total || end.After(overAt.Add(30*time.Second))) {
			break
		}
		select {
		case err := <-errc:
			return res, err
		default:
		}
		// A pause between polls, so that the poller does not hold the
		// engine (one statement at a time) against the aggregator's inserts.
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	res.probes = len(acks)
	res.pollMean = pollTotal / time.Duration(max(1, res.polls))
	select {
	case err := <-errc:
		return res, err
	default:
	}
	return res, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
