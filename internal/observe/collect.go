package observe

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	readyDesc = prometheus.NewDesc("ikd_ready",
		"1 when the program has started and every readiness check passes (what /readyz answers 200 for), else 0.", []string{"program"}, nil)
	readyCheckDesc = prometheus.NewDesc("ikd_ready_check",
		"1 when the named readiness check passes, else 0.", []string{"check"}, nil)
	warehouseDesc = prometheus.NewDesc("ikd_warehouse_reachable",
		"1 when the warehouse answered a ping within 2 s at the last scrape, else 0.", nil, nil)
	brokerDesc = prometheus.NewDesc("ikd_broker_connected",
		"1 when the named broker connection is connected, else 0.", []string{"connection"}, nil)
	consumerLabels = []string{"stream", "consumer"}
	pendingDesc    = prometheus.NewDesc("ikd_consumer_pending_messages",
		"Messages of the stream the durable consumer has not yet been delivered (JetStream num_pending): the lag.", consumerLabels, nil)
	ackPendingDesc = prometheus.NewDesc("ikd_consumer_ack_pending_messages",
		"Messages delivered to the durable consumer and not yet acknowledged (JetStream num_ack_pending).", consumerLabels, nil)
	redeliveredDesc = prometheus.NewDesc("ikd_consumer_redelivered_messages",
		"Messages delivered more than once and not yet acknowledged (JetStream num_redelivered).", consumerLabels, nil)
)

// consumerState keeps what the last consumer info said.
type consumerState struct {
	c    jetstream.Consumer
	mu   sync.Mutex
	info *jetstream.ConsumerInfo // nil when the last fetch failed
}

func (cs *consumerState) probe(ctx context.Context) error {
	info, err := cs.c.Info(ctx)
	cs.mu.Lock()
	cs.info = info
	if err != nil {
		cs.info = nil
	}
	cs.mu.Unlock()
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	return nil
}

func (cs *consumerState) last() *jetstream.ConsumerInfo {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.info
}

// Broker adds the check that the named broker connection is connected, also
// exported as ikd_broker_connected{connection=name}.
func (s *Server) Broker(name string, nc *nats.Conn) {
	s.add(check{name: "broker " + name, kind: "broker", probe: func(context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("connection is %s", st)
		}
		return nil
	}})
}

// Consumer adds the check that the durable consumer exists (its info is
// read from JetStream, within the probe timeout, at most once a second), and
// exports its pending and ack-pending counts from that info.
func (s *Server) Consumer(c jetstream.Consumer) {
	ci := c.CachedInfo()
	cs := &consumerState{c: c}
	s.add(check{name: fmt.Sprintf("consumer %s/%s", ci.Stream, ci.Name), kind: "consumer", probe: cs.probe, consumer: cs})
}

// readiness is the Server as the collector of the readiness metrics.
type readiness Server

func (r *readiness) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{readyDesc, readyCheckDesc, warehouseDesc, brokerDesc, pendingDesc, ackPendingDesc, redeliveredDesc} {
		ch <- d
	}
}

func (r *readiness) Collect(ch chan<- prometheus.Metric) {
	s := (*Server)(r)
	ready, results := s.Readiness(context.Background())
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, one(ready), s.program)
	s.mu.Lock()
	checks := s.checks
	s.mu.Unlock()
	for _, c := range checks {
		err, ran := results[c.name]
		ok := ran && err == nil
		ch <- prometheus.MustNewConstMetric(readyCheckDesc, prometheus.GaugeValue, one(ok), c.name)
		switch c.kind {
		case "warehouse":
			ch <- prometheus.MustNewConstMetric(warehouseDesc, prometheus.GaugeValue, one(ok))
		case "broker":
			ch <- prometheus.MustNewConstMetric(brokerDesc, prometheus.GaugeValue, one(ok), c.name[len("broker "):])
		case "consumer":
			collectConsumer(ch, c.consumer.last())
		}
	}
}

func collectConsumer(ch chan<- prometheus.Metric, info *jetstream.ConsumerInfo) {
	if info == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, info.Stream, info.Name)
	}
	gauge(pendingDesc, float64(info.NumPending))
	gauge(ackPendingDesc, float64(info.NumAckPending))
	gauge(redeliveredDesc, float64(info.NumRedelivered))
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
