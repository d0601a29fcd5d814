package alerter

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// Rule names an alerting rule.
type Rule string

const (
	BehindPace Rule = "behind_pace"
	Projection Rule = "projection"
	Stale      Rule = "stale"
)

// Severity of an alert.
type Severity string

const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

func (s Severity) rank() int {
	if s == Critical {
		return 2
	}
	return 1
}

// State of an alert.
type State string

const (
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Alert is one transition, as stored in ikd.alerts and published (JSON) to
// IKD_ALERTS and the webhook:
//
//	{"alert_id":"4f1c…","rule":"behind_pace","severity":"critical","state":"firing",
//	 "year":2023,"region_code":"17","province_code":"17","city_code":"",
//	 "region_name":"BENGKULU","attainment_pct":3.3,"expected_pct":12.05,
//	 "target":375000,"activated":12393,"message":"…","at":"2023-02-13T05:00:00Z"}
type Alert struct {
	AlertID       string    `json:"alert_id"` // same for the rows of one episode
	Rule          Rule      `json:"rule"`
	Severity      Severity  `json:"severity"`
	State         State     `json:"state"`
	Year          int       `json:"year"`
	RegionCode    string    `json:"region_code"`   // city or province code
	ProvinceCode  string    `json:"province_code"` // "17"
	CityCode      string    `json:"city_code"`     // "17.71"; "" for a province
	RegionName    string    `json:"region_name"`
	AttainmentPct float64   `json:"attainment_pct"`
	ExpectedPct   float64   `json:"expected_pct"`
	Target        uint64    `json:"target"`
	Activated     uint64    `json:"activated"`
	Message       string    `json:"message"`
	At            time.Time `json:"at"`
}

// Key identifies the alert's (rule, region, year): "behind_pace/17.71/2023".
func (a Alert) Key() string { return key(a.Rule, a.RegionCode, a.Year) }

func key(rule Rule, region string, year int) string {
	return fmt.Sprintf("%s/%s/%d", rule, region, year)
}

// Subject is where the alert is published:
// ikd.alerts.v1.<severity>.<province>.<city>, "_" as city for a province
// (ikd.alerts.v1.warning.17.71, ikd.alerts.v1.critical.17._).
func (a Alert) Subject() string {
	city := "_"
	if a.CityCode != "" {
		_, c, _ := strings.Cut(a.CityCode, ".")
		city = c
	}
	return fmt.Sprintf("%s.%s.%s.%s", broker.AlertsPrefix, a.Severity, a.ProvinceCode, city)
}

// MsgID is the Nats-Msg-Id of the alert: alert_id and state, plus the
// severity so that an escalation is not taken for a duplicate of its firing.
func (a Alert) MsgID() string { return fmt.Sprintf("%s.%s.%s", a.AlertID, a.State, a.Severity) }

// episodeID is the alert_id of the episode of (rule, region, year) that
// follows the episode previous ("" for the first). Every alerter that knows
// the same history derives the same id, so replicas agree without talking.
func episodeID(rule Rule, region string, year int, previous string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d|%s", rule, region, year, previous))
	return hex.EncodeToString(sum[:12])
}
