package aggregator

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are what Stats' totals cannot say: distributions, dead letters by
// reason, and how fresh the counts are. The collector reads them and Stats.
type metrics struct {
	started       time.Time
	batchSize     prometheus.Histogram
	writeDuration prometheus.Histogram
	deadLettered  *prometheus.CounterVec
	// newest is the occurred_at, in Unix nanoseconds, of the newest event
	// the warehouse accepted since start; 0 before the first.
	newest atomic.Int64
}

func newMetrics() *metrics {
	return &metrics{
		started: time.Now(),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ikd_aggregator_batch_size_events",
			Help:    "Valid events per batch handed to the warehouse writer.",
			Buckets: []float64{1, 5, 10, 50, 100, 500, 1000, 2500, 5000, 10000},
		}),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ikd_aggregator_write_duration_seconds",
			Help:    "Duration of one attempt to write a batch to the warehouse, failed attempts included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ikd_aggregator_dead_lettered_events_total",
			Help: "Events stored in the dead-letter stream, by reason.",
		}, []string{"reason"}),
	}
}

// counted notes the newest event of a batch the warehouse accepted.
func (m *metrics) counted(batch []pending) {
	for _, p := range batch {
		at := p.record.OccurredAt.UnixNano()
		for {
			cur := m.newest.Load()
			if at <= cur || m.newest.CompareAndSwap(cur, at) {
				break
			}
		}
	}
}

// Consumer is the aggregator's durable consumer on IKD_EVENTS, whose pending
// counts are the lag an operator watches.
func (a *Aggregator) Consumer() jetstream.Consumer { return a.consumer }

// Collector exports the aggregator's counters, histograms and freshness.
func (a *Aggregator) Collector() prometheus.Collector { return (*collector)(a) }

type collector Aggregator

var (
	receivedDesc = prometheus.NewDesc("ikd_aggregator_received_events_total",
		"Messages fetched from IKD_EVENTS, redeliveries included.", nil, nil)
	writtenDesc = prometheus.NewDesc("ikd_aggregator_written_events_total",
		"Events the warehouse accepted; delivery=first on their first delivery, redelivered when they may have been written before.", []string{"delivery"}, nil)
	refusedDesc = prometheus.NewDesc("ikd_aggregator_refused_events_total",
		"Events the warehouse refused and that were sent back for a later try.", nil, nil)
	retriesDesc = prometheus.NewDesc("ikd_aggregator_write_retries_total",
		"Write attempts that failed while the warehouse was unavailable and were retried.", nil, nil)
	errorsDesc = prometheus.NewDesc("ikd_aggregator_errors_total",
		"Broker publishes that failed: error_type=dead_letter (the message comes back) or announce (the alerter waits for its schedule).", []string{"error_type"}, nil)
	newestDesc = prometheus.NewDesc("ikd_aggregator_newest_event_timestamp_seconds",
		"occurred_at of the newest event the warehouse accepted since start, in Unix seconds; 0 before the first.", nil, nil)
	ageDesc = prometheus.NewDesc("ikd_aggregator_newest_event_age_seconds",
		"Seconds since the occurred_at of the newest event the warehouse accepted; before the first, seconds since the aggregator started.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{receivedDesc, writtenDesc, refusedDesc, retriesDesc, errorsDesc, newestDesc, ageDesc} {
		ch <- d
	}
	c.metrics.batchSize.Describe(ch)
	c.metrics.writeDuration.Describe(ch)
	c.metrics.deadLettered.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(receivedDesc, c.Stats.Received.Load())
	counter(writtenDesc, c.Stats.Written.Load(), "first")
	counter(writtenDesc, c.Stats.Rewritten.Load(), "redelivered")
	counter(refusedDesc, c.Stats.Refused.Load())
	counter(retriesDesc, c.Stats.Retries.Load())
	counter(errorsDesc, c.deadLetterFailures.Load(), "dead_letter")
	counter(errorsDesc, c.announceFailures.Load(), "announce")
	newest, age := freshness(c.metrics.newest.Load(), c.metrics.started, time.Now())
	ch <- prometheus.MustNewConstMetric(newestDesc, prometheus.GaugeValue, newest)
	ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age)
	c.metrics.batchSize.Collect(ch)
	c.metrics.writeDuration.Collect(ch)
	c.metrics.deadLettered.Collect(ch)
}

// freshness is the newest counted event's time in Unix seconds (0 if none)
// and its age as of now; with none counted yet the age runs from started,
// so that a pipeline counting nothing still grows stale. An event from the
// near future has age 0.
func freshness(newestNanos int64, started, now time.Time) (newest, age float64) {
	if newestNanos == 0 {
		return 0, max(now.Sub(started).Seconds(), 0)
	}
	t := time.Unix(0, newestNanos)
	return float64(newestNanos) / 1e9, max(now.Sub(t).Seconds(), 0)
}

// timeWrite observes a write attempt that began at start.
func (m *metrics) timeWrite(start time.Time) {
	m.writeDuration.Observe(time.Since(start).Seconds())
}
