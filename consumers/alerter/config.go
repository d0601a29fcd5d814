// Package alerter is the consumer that watches attainment against targets and
// raises alerts when a region falls behind. It re-evaluates the cities named
// by the aggregator's announcements on IKD_CHANGES (and their provinces) as
// soon as they arrive, and every region on a schedule because pace moves with
// the calendar. Every transition is recorded in ikd.alerts, published to
// IKD_ALERTS and, optionally, posted to a webhook.
//
// Rules, evaluated for the current year (WIB) of every city and province with
// target > 0 and expected_pct > 0:
//
//   - behind_pace: attainment_pct < expected_pct - MarginPct fires a
//     "warning", a "critical" when attainment_pct < expected_pct *
//     CriticalFactor. It resolves only once attainment_pct >= expected_pct -
//     MarginPct + HysteresisPct.
//   - projection: the year-end projection activated / (expected_pct/100) is
//     below target, i.e. projected_pct = 100 * attainment_pct / expected_pct <
//     100, fires a "warning"; it resolves once projected_pct >= 100 +
//     HysteresisPct.
//   - stale: no activation for StaleDays days (counted from the start of the
//     year when there was none) fires a "warning"; the next activation resolves it.
//
// An alert fires once when its region enters the rule and resolves once when
// it leaves it; while firing it may escalate from warning to critical, never
// back. State lives in ikd.alerts and is read again before every evaluation.
//
// Any number of alerters may run at once (with one durable or several): each
// transition is recorded once and published once. The alert_id of an
// episode is derived from (rule, region, year, the previous episode's id), so
// every replica that reads the same history names it alike; a transition is
// published to IKD_ALERTS first under its Nats-Msg-Id (alert_id, state,
// severity), which the broker drops when repeated within the duplicate
// window (IKD_STREAM_DUPLICATE_WINDOW, 10m), and then recorded with that id as
// the insert's deduplication token, which ikd.alerts drops when repeated.
// Every replica evaluates, so when one dies the others have already covered
// it: a transition is found at the latest one IKD_ALERTER_INTERVAL after the
// figures change. Only the replica whose publication was new logs the
// transition and posts it to the webhook. When
// the year (WIB) turns, an alert still firing for the year gone by resolves
// with the message "<region>: year <year> ended with the alert firing".
package alerter

import (
	"errors"
	"time"

	"github.com/ikd-pipeline/ikd/internal/config"
)

// Config tunes the alerter; read from IKD_ALERTER_* by ikd-alerter.
type Config struct {
	// Durable names the pull consumer on IKD_CHANGES.
	Durable string `envconfig:"DURABLE" default:"ikd-alerter"`
	// Interval between full evaluations of every region.
	Interval time.Duration `envconfig:"INTERVAL" default:"1m"`
	// ChangesWindow is how long the announcements on IKD_CHANGES are
	// gathered into one evaluation of the regions they name. An evaluation
	// reads the views once for all of them, at national scale 0.2 to 1 s of
	// the warehouse's time whatever their number, so a longer window leaves
	// more of it to ingest and analysts; an alert comes at most this much,
	// plus its evaluation, after the batch that caused it.
	ChangesWindow time.Duration `envconfig:"CHANGES_WINDOW" default:"5s"`
	// MarginPct: percentage points below expected_pct at which behind_pace fires.
	MarginPct float64 `envconfig:"MARGIN_PCT" default:"5"`
	// CriticalFactor: behind_pace is critical below expected_pct * CriticalFactor.
	CriticalFactor float64 `envconfig:"CRITICAL_FACTOR" default:"0.5"`
	// HysteresisPct: percentage points past the firing edge a region must
	// recover before behind_pace or projection resolves.
	HysteresisPct float64 `envconfig:"HYSTERESIS_PCT" default:"2"`
	// StaleDays without an activation before stale fires; 0 disables the rule.
	StaleDays int `envconfig:"STALE_DAYS" default:"14"`
	// WebhookURL, when set, receives every alert as a JSON POST.
	WebhookURL string `envconfig:"WEBHOOK_URL" secret:"dsn"`
	// WebhookMaxElapsed bounds the retries of one delivery.
	WebhookMaxElapsed time.Duration `envconfig:"WEBHOOK_MAX_ELAPSED" default:"1m"`
	// WebhookInitialInterval is the first retry delay; it doubles up to 10s.
	WebhookInitialInterval time.Duration `envconfig:"WEBHOOK_INITIAL_INTERVAL" default:"500ms"`
	// WebhookTimeout bounds one POST.
	WebhookTimeout time.Duration `envconfig:"WEBHOOK_TIMEOUT" default:"10s"`
	// WebhookQueue is how many deliveries may wait; beyond it they are dropped
	// (and logged): IKD_ALERTS and ikd.alerts still hold them.
	WebhookQueue int `envconfig:"WEBHOOK_QUEUE" default:"1000"`
}

// DefaultConfig is Config with the defaults of its tags, which ikd-alerter
// runs with when nothing is set: the tags are the one place they are written.
func DefaultConfig() Config { return config.MustDefaults[Config]() }

// Validate refuses values that would break the alerter or silence it.
func (c Config) Validate() error {
	errs := []error{
		config.NotEmpty("Durable", c.Durable),
		config.Positive("Interval", c.Interval),
		changesWindow(c.ChangesWindow),
		config.Between("MarginPct", c.MarginPct, 0, 100),
		config.Between("CriticalFactor", c.CriticalFactor, 0, 1),
		config.Between("HysteresisPct", c.HysteresisPct, 0, 100),
		config.AtLeast("StaleDays", c.StaleDays, 0),
		config.Positive("WebhookMaxElapsed", c.WebhookMaxElapsed),
		config.Positive("WebhookInitialInterval", c.WebhookInitialInterval),
		config.Positive("WebhookTimeout", c.WebhookTimeout),
		config.AtLeast("WebhookQueue", c.WebhookQueue, 1),
	}
	if c.WebhookInitialInterval > webhookMaxInterval {
		errs = append(errs, config.Invalid("WebhookInitialInterval", "must be at most %s, the longest wait between two posts, got %s", webhookMaxInterval, c.WebhookInitialInterval))
	}
	if c.WebhookURL != "" {
		errs = append(errs, config.URL("WebhookURL", c.WebhookURL, "http", "https"))
	}
	return errors.Join(errs...)
}

// maxChangesWindow keeps the announcements of a window, and their
// evaluation, well within the broker's wait for their acknowledgement.
const maxChangesWindow = changesAckWait / 2

// changesWindow refuses a window the broker would not wait for, or none.
func changesWindow(w time.Duration) error {
	if w <= 0 || w > maxChangesWindow {
		return config.Invalid("ChangesWindow", "must be more than 0 and at most %s (announcements are redelivered when not acknowledged within %s), got %s", maxChangesWindow, changesAckWait, w)
	}
	return nil
}
