// Package simulate plays the service counters of all of Indonesia, for load
// tests and demonstrations: it generates the JSON lines counters send, builds
// them into events and publishes them at a requested rate.
//
// The population and the mix, all deterministic for a seed:
//   - Every one of the 514 regencies and cities of the reference has one
//     office, "1771-OFF-01" for 17.71, and is a resident's domicile with a
//     weight equal to its number of districts. The reference holds no
//     population, and the number of districts is the proxy at hand: larger
//     populations are split into more districts.
//   - About 30% of events are enrolments (perekaman), 70% activations.
//   - About 5% of activations are a resident activating a second time (a new
//     phone, say), drawn from the older half of the last 4,096 residents
//     activated, so they start after a few thousand events.
//   - About 10% of activations happen at an office in another province than
//     the domicile, which the NIK gives; the office city is drawn with the
//     same weights. Another 15% are done at home by the office's outreach
//     team ("jemput bola"); all other events are at the home office's
//     counter.
//   - NIKs are valid: a real district of the domicile city, a birth date from
//     1950 to 2008, either sex, a serial from 1 to 9999.
//   - occurred_at is Config.Now, in the office's time zone (WIB, WITA or
//     WIT), with milliseconds.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/producers/publish"
)

// Config says how much to simulate.
type Config struct {
	Rate     float64          // events per second; 0 does nothing
	Duration time.Duration    // how long to run; 0 runs until ctx ends
	Seed     int64            // the same seed gives the same residents, offices and mix
	Now      func() time.Time // the time of each event; default time.Now
}

// Progress is reported about once a second, and once at the end.
type Progress struct {
	Sent    int           // events handed to the publisher
	Acked   int           // events the broker acknowledged, duplicates included
	Rate    float64       // events acknowledged per second since the last report
	Elapsed time.Duration // since Run started
}

// Publisher puts events on the broker; *publish.Publisher is one.
type Publisher interface {
	Publish(ctx context.Context, evs []events.Event) (publish.Result, error)
}

const (
	// tick is how often a batch goes out: often enough for a smooth rate,
	// seldom enough for batches that amortise the round trip.
	tick = 10 * time.Millisecond
	// maxBatch keeps batches small when publishing falls behind the rate.
	maxBatch = 1000

	reportEvery = time.Second
)

// Run publishes simulated events at cfg.Rate until cfg.Duration has passed or
// ctx ends, and reports progress (which may be nil). When publishing cannot
// keep up, batches grow up to maxBatch to catch up; events still due when
// the time is up are not sent. It returns nil at the end of cfg.Duration,
// ctx's error when ctx ends first, or the first publishing error.
func Run(ctx context.Context, cfg Config, builder *events.Builder, pub Publisher, progress func(Progress)) error {
	if cfg.Rate == 0 {
		return nil
	}
	if cfg.Rate < 0 || cfg.Duration < 0 {
		return fmt.Errorf("simulate: rate %g and duration %s must not be negative", cfg.Rate, cfg.Duration)
	}
	g, err := newGenerator(builder.Ref, cfg.Seed)
	if err != nil {
		return err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	r := &runner{cfg: cfg, gen: g, builder: builder, pub: pub, progress: progress, start: time.Now()}
	r.lastReport = r.start
	return r.run(ctx)
}

// runner is the state of one Run.
type runner struct {
	cfg      Config
	gen      *generator
	builder  *events.Builder
	pub      Publisher
	progress func(Progress)

	start, lastReport time.Time
	sent, acked       int
	ackedAtReport     int
}

func (r *runner) run(ctx context.Context) error {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.report(time.Now())
			return ctx.Err()
		case now := <-ticker.C:
			done := r.cfg.Duration > 0 && now.Sub(r.start) >= r.cfg.Duration
			if err := r.send(ctx, r.due(now)); err != nil {
				r.report(time.Now())
				return err
			}
			if done {
				r.report(time.Now())
				return nil
			}
			if now.Sub(r.lastReport) >= reportEvery {
				r.report(now)
			}
		}
	}
}

// due is how many events are owed by now, at most maxBatch.
func (r *runner) due(now time.Time) int {
	elapsed := now.Sub(r.start)
	if r.cfg.Duration > 0 {
		elapsed = min(elapsed, r.cfg.Duration)
	}
	return min(int(r.cfg.Rate*elapsed.Seconds())-r.sent, maxBatch)
}

// send generates n events and publishes them.
func (r *runner) send(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	batch := make([]events.Event, n)
	for i := range batch {
		data := r.gen.line(r.cfg.Now())
		ev, err := r.builder.Build(data)
		if err != nil {
			// A rejected line is a bug here, or a Builder whose clock is
			// far from Config.Now.
			return fmt.Errorf("simulate: generated line rejected: %w", err)
		}
		batch[i] = ev
	}
	r.sent += n
	res, err := r.pub.Publish(ctx, batch)
	r.acked += res.Published + res.Duplicates
	if err != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}

func (r *runner) report(now time.Time) {
	interval := now.Sub(r.lastReport).Seconds()
	p := Progress{Sent: r.sent, Acked: r.acked, Elapsed: now.Sub(r.start)}
	if interval > 0 {
		p.Rate = float64(r.acked-r.ackedAtReport) / interval
	}
	r.lastReport, r.ackedAtReport = now, r.acked
	r.progress(p)
}
