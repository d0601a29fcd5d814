package agent

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ikd-pipeline/ikd/internal/observe"
	"github.com/ikd-pipeline/ikd/producers/spool"
)

// observer is the agent's registry and readiness, made with the first
// handler: ready while the agent takes events, whatever the link (events
// wait in the spool while it is down).
func (a *Agent) observer() *observe.Server {
	a.obsOnce.Do(func() {
		a.obs = observe.New("ikd-counter")
		a.obs.MustRegister((*collector)(a))
		a.obs.Check("accepting", func(context.Context) error {
			if a.stopping.Load() {
				return errors.New("the agent is stopping")
			}
			return nil
		})
		a.obs.Started()
	})
	return a.obs
}

type collector Agent

// agentMetric is one of the agent's metrics, read from its Status.
type agentMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Status) float64
}

func gaugeOf(name, help string, v func(Status) float64) agentMetric {
	return agentMetric{prometheus.NewDesc(name, help, []string{"office"}, nil), prometheus.GaugeValue, v}
}

func counterOf(name, help string, v func(Status) float64) agentMetric {
	return agentMetric{prometheus.NewDesc(name, help, []string{"office"}, nil), prometheus.CounterValue, v}
}

var agentMetrics = []agentMetric{
	gaugeOf("ikd_agent_waiting_events", "Events accepted and not yet acknowledged by the broker.",
		func(s Status) float64 { return float64(s.WaitingEvents) }),
	gaugeOf("ikd_agent_waiting_bytes", "Bytes of the waiting events in the spool.",
		func(s Status) float64 { return float64(s.WaitingBytes) }),
	gaugeOf("ikd_agent_spool_limit_bytes", "The most the waiting events may take.",
		func(s Status) float64 { return float64(s.SpoolLimitBytes) }),
	gaugeOf("ikd_agent_oldest_waiting_age_seconds", "Age of the oldest waiting event, 0 if none.",
		func(s Status) float64 { return s.OldestWaitingSecs }),
	gaugeOf("ikd_agent_link_up", "1 if the broker takes events, else 0.",
		func(s Status) float64 { return one(s.Link == spool.LinkUp) }),
	gaugeOf("ikd_agent_last_forward_timestamp_seconds", "When the broker last acknowledged events, 0 if never since start.",
		func(s Status) float64 {
			if s.LastForwardAt == nil {
				return 0
			}
			return float64(s.LastForwardAt.UnixMilli()) / 1000
		}),
	counterOf("ikd_agent_forwarded_events_total", "Events the broker acknowledged since start.",
		func(s Status) float64 { return float64(s.ForwardedTotal) }),
	counterOf("ikd_agent_accepted_events_total", "Events accepted into the spool since start.",
		func(s Status) float64 { return float64(s.AcceptedTotal) }),
	counterOf("ikd_agent_invalid_events_total", "Input lines rejected as invalid since start.",
		func(s Status) float64 { return float64(s.InvalidTotal) }),
	counterOf("ikd_agent_refused_full_events_total", "Valid events refused because the spool was full, since start.",
		func(s Status) float64 { return float64(s.RefusedFullTotal) }),
	gaugeOf("ikd_agent_set_aside_events", "Events the broker refused for good, kept in the set-aside file.",
		func(s Status) float64 { return float64(s.SetAside) }),
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range agentMetrics {
		ch <- m.desc
	}
}

// Collect reads one Status, so that the metrics of a scrape agree.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := (*Agent)(c).Status()
	for _, m := range agentMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s), s.OfficeID)
	}
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
