package clusterfaults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// alertWatch is what the alerter is expected to do through the faults: the
// cities whose target the events meet fire and then resolve, those whose
// target they cannot meet fire and stay firing.
type alertWatch struct {
	conn   driver.Conn
	js     jetstream.JetStream
	year   int
	met    []string
	missed []string
	// sentinel is a city without events, given a target at the end.
	sentinel string
}

// watchAlerts gives three cities of evs a target of one activation and
// three a target of a billion, for this year, and waits until the alerter
// fires for all six: the events are not published yet.
func watchAlerts(t *testing.T, conn driver.Conn, js jetstream.JetStream, ref *region.Reference, evs []events.Event) *alertWatch {
	t.Helper()
	year := time.Now().In(events.WIB).Year()
	act, _ := residents(evs)
	var cities []string
	for k := range act {
		if k.year == year {
			cities = append(cities, k.city)
		}
	}
	slices.Sort(cities)
	if len(cities) < 6 {
		t.Fatalf("the events activate residents of %d cities this year, want at least 6", len(cities))
	}
	w := &alertWatch{conn: conn, js: js, year: year, met: cities[:3], missed: cities[3:6]}
	for _, c := range ref.Cities() {
		if _, ok := act[cityYear{c.Code, year}]; !ok {
			w.sentinel = c.Code
			break
		}
	}
	// The programs create the schema at start.
	testenv.Eventually(t, 2*time.Minute, func() error {
		for _, city := range w.met {
			if err := w.target(city, 1); err != nil {
				return err
			}
		}
		for _, city := range w.missed {
			if err := w.target(city, 1e9); err != nil {
				return err
			}
		}
		return nil
	})
	testenv.Eventually(t, 2*time.Minute, func() error {
		byRegion, err := w.transitions()
		if err != nil {
			return err
		}
		for _, city := range append(slices.Clone(w.met), w.missed...) {
			if !w.firing(byRegion, city) {
				return fmt.Errorf("no alert fires for %s yet", city)
			}
		}
		return nil
	})
	return w
}

func (w *alertWatch) target(region string, value float64) error {
	return w.conn.Exec(context.Background(),
		"INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline) VALUES (?, ?, 'absolute', ?, 0)",
		uint16(w.year), region, value)
}

// transition is one row of ikd.alerts.
type transition struct {
	AlertID  string `json:"alert_id"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	State    string `json:"state"`
	Region   string `json:"region_code"`
	Year     int    `json:"year"`
}

// transitions returns this year's rows of ikd.alerts by region and rule, in
// the order they happened.
func (w *alertWatch) transitions() (map[string]map[string][]transition, error) {
	rows, err := w.conn.Query(context.Background(),
		"SELECT alert_id, rule, severity, state, region_code FROM ikd.alerts FINAL WHERE year = ? ORDER BY region_code, rule, at", uint16(w.year))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string][]transition{}
	for rows.Next() {
		var tr transition
		if err := rows.Scan(&tr.AlertID, &tr.Rule, &tr.Severity, &tr.State, &tr.Region); err != nil {
			return nil, err
		}
		if out[tr.Region] == nil {
			out[tr.Region] = map[string][]transition{}
		}
		out[tr.Region][tr.Rule] = append(out[tr.Region][tr.Rule], tr)
	}
	return out, rows.Err()
}

// firing reports whether some rule's last transition for region is firing.
func (w *alertWatch) firing(byRegion map[string]map[string][]transition, region string) bool {
	for _, trs := range byRegion[region] {
		if trs[len(trs)-1].State == "firing" {
			return true
		}
	}
	return false
}

// check waits until every met city's alerts resolved, then until the
// alerter has evaluated once more (a new target fires), and checks that no
// transition was missed or repeated, in ikd.alerts and on IKD_ALERTS.
func (w *alertWatch) check(t *testing.T, acked []events.Event) {
	t.Helper()
	act, _ := residents(acked)
	for _, city := range w.met {
		if len(act[cityYear{city, w.year}]) == 0 {
			t.Fatalf("no acknowledged activation in %s this year", city)
		}
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		byRegion, err := w.transitions()
		if err != nil {
			return err
		}
		for _, city := range w.met {
			if w.firing(byRegion, city) {
				return fmt.Errorf("%s met its target but an alert still fires", city)
			}
		}
		return nil
	})
	// A region without events, given a target now, fires at the alerter's
	// next evaluation: after it, whatever the alerter would still record of
	// the others is recorded.
	sentinel := w.sentinel
	if err := w.target(sentinel, 1e9); err != nil {
		t.Fatal(err)
	}
	var byRegion map[string]map[string][]transition
	testenv.Eventually(t, 2*time.Minute, func() (err error) {
		if byRegion, err = w.transitions(); err != nil {
			return err
		}
		if !w.firing(byRegion, sentinel) {
			return fmt.Errorf("no alert fires for %s yet", sentinel)
		}
		return nil
	})

	recorded := map[string]bool{}
	for region, rules := range byRegion {
		for rule, trs := range rules {
			var states []string
			for i, tr := range trs {
				states = append(states, tr.State+"/"+tr.Severity)
				recorded[tr.key()] = true
				if i == 0 && tr.State != "firing" {
					t.Errorf("%s %s: the first transition is %s", region, rule, tr.State)
				}
				if i > 0 && tr.State == trs[i-1].State && tr.Severity == trs[i-1].Severity {
					t.Errorf("%s %s: a transition repeated: %s", region, rule, strings.Join(states, " → "))
				}
			}
			last := trs[len(trs)-1].State
			switch {
			case slices.Contains(w.met, region) && (last != "resolved" || len(trs) != 2):
				t.Errorf("%s met its target: %s went %s, want firing → resolved", region, rule, strings.Join(states, " → "))
			case slices.Contains(w.missed, region) && len(trs) != 1:
				t.Errorf("%s cannot meet its target: %s went %s, want it to fire once", region, rule, strings.Join(states, " → "))
			}
		}
	}
	// The alerter may still be recording or publishing the sentinel's
	// province: compare both sides until they agree.
	testenv.Eventually(t, time.Minute, func() error {
		published, err := w.published(t)
		if err != nil {
			return err
		}
		byRegion, err := w.transitions()
		if err != nil {
			return err
		}
		recorded := map[string]bool{}
		for _, rules := range byRegion {
			for _, trs := range rules {
				for _, tr := range trs {
					recorded[tr.key()] = true
				}
			}
		}
		for k := range recorded {
			if !published[k] {
				return fmt.Errorf("transition %s recorded in ikd.alerts but not published", k)
			}
		}
		for k := range published {
			if !recorded[k] {
				return fmt.Errorf("transition %s published but not in ikd.alerts", k)
			}
		}
		return nil
	})
	t.Logf("alerts: %d transitions recorded and published once each over %d regions (met %v, missed %v, sentinel %s)",
		len(recorded), len(byRegion), w.met, w.missed, sentinel)
}

func (tr transition) key() string { return tr.AlertID + " " + tr.State + " " + tr.Severity }

// published reads this year's alerts on IKD_ALERTS; one published twice
// (the same Nats-Msg-Id) fails the test.
func (w *alertWatch) published(t *testing.T) (map[string]bool, error) {
	t.Helper()
	published := map[string]bool{}
	ids := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := broker.ReadStream(ctx, w.js, broker.AlertsStream, jetstream.OrderedConsumerConfig{}, func(msg jetstream.Msg, _ uint64) error {
		var tr transition
		if err := json.Unmarshal(msg.Data(), &tr); err != nil {
			return err
		}
		if tr.Year != w.year {
			return nil
		}
		id := msg.Headers().Get(nats.MsgIdHdr)
		if ids[id] {
			t.Errorf("alert %s published twice", id)
		}
		ids[id] = true
		published[tr.key()] = true
		return nil
	})
	return published, err
}
