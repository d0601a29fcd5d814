package alerter

import (
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Consumer is the alerter's durable consumer on IKD_CHANGES.
func (a *Alerter) Consumer() jetstream.Consumer { return a.consumer }

// Collector exports the alerter's totals and the alerts firing now; it
// reads Stats and Firing, so the evaluation itself knows nothing of metrics.
func (a *Alerter) Collector() prometheus.Collector { return (*collector)(a) }

type collector Alerter

var (
	evaluationsDesc = prometheus.NewDesc("ikd_alerter_evaluations_total",
		"Evaluations of the rules, of every region or of the regions announced on IKD_CHANGES.", nil, nil)
	transitionsDesc = prometheus.NewDesc("ikd_alerter_transitions_total",
		"Alert transitions this alerter recorded, by kind: firing (escalations included) or resolved.", []string{"kind"}, nil)
	firingDesc = prometheus.NewDesc("ikd_alerter_alerts_firing",
		"Alerts firing now, by severity.", []string{"severity"}, nil)
	webhookSentDesc = prometheus.NewDesc("ikd_alerter_webhook_sent_total",
		"Alert transitions the webhook accepted.", nil, nil)
	alerterErrorsDesc = prometheus.NewDesc("ikd_alerter_errors_total",
		"Failures, by error_type: publish (to IKD_ALERTS) or webhook (given up after retries, or dropped on a full queue).", []string{"error_type"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{evaluationsDesc, transitionsDesc, firingDesc, webhookSentDesc, alerterErrorsDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, float64(v), labels...)
	}
	metric(evaluationsDesc, prometheus.CounterValue, c.Stats.Evaluations.Load())
	metric(transitionsDesc, prometheus.CounterValue, c.Stats.Fired.Load(), string(Firing))
	metric(transitionsDesc, prometheus.CounterValue, c.Stats.Resolved.Load(), string(Resolved))
	metric(webhookSentDesc, prometheus.CounterValue, c.Stats.WebhookDelivered.Load())
	metric(alerterErrorsDesc, prometheus.CounterValue, c.Stats.PublishFailed.Load(), "publish")
	metric(alerterErrorsDesc, prometheus.CounterValue, c.Stats.WebhookFailed.Load(), "webhook")
	for severity, n := range bySeverity((*Alerter)(c).Firing()) {
		metric(firingDesc, prometheus.GaugeValue, n, string(severity))
	}
}

// bySeverity counts alerts by severity, every severity present even at 0
// so that a dashboard shows a zero rather than no data.
func bySeverity(firing map[string]Alert) map[Severity]uint64 {
	n := map[Severity]uint64{Warning: 0, Critical: 0}
	for _, al := range firing {
		n[al.Severity]++
	}
	return n
}
