package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ikd-pipeline/ikd/internal/contract"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// The table's totals are what the data holds, as after a restart: no
// process has counted anything.
func TestTheTableCountsFromTheDataNotFromTheProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := testenv.JetStream(t, testenv.Broker(t).URL())
	conn, _ := testenv.MigratedWarehouse(t)
	for _, sql := range []string{
		// Two events, one of them written twice.
		`INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
		 SELECT ['e1', 'e2', 'e2'][number + 1], 'activation', 'r', '17', '17.71', '17.71.01', 'X', 'counter', now64(3), number FROM numbers(3)`,
		// Firing: a critical province alert in 17 and a warning city alert
		// in 18; a resolved one in 17.71 is not.
		`INSERT INTO ikd.alerts (alert_id, rule, severity, state, year, region_code, province_code, city_code, at) VALUES
		 ('a', 'behind_pace', 'critical', 'firing', 2026, '17', '17', '', now64(3)),
		 ('b', 'projection', 'warning', 'firing', 2026, '17.71', '17', '17.71', now64(3) - 1),
		 ('b', 'projection', 'warning', 'resolved', 2026, '17.71', '17', '17.71', now64(3)),
		 ('c', 'stale', 'warning', 'firing', 2026, '18.71', '18', '18.71', now64(3))`,
	} {
		if err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// The events, written straight into ikd.events, counted as the
	// aggregator would count them.
	if err := warehouse.Recount(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"invalid_nik", "future_time"} {
		if _, err := js.Publish(ctx, contract.DeadLetterSubject(reason), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}

	var out bytes.Buffer
	if err := printTable(ctx, conn, js, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "(events written 2, dead-lettered 2, alerts firing 2)") {
		t.Errorf("totals:\n%s", got)
	}
	for code, mark := range map[string]string{"17": "! critical", "18": "! warning", "11": "-"} {
		if !regexp.MustCompile(`(?m)^\s*` + code + `\s.*\s` + regexp.QuoteMeta(mark) + `\s*$`).MatchString(got) {
			t.Errorf("province %s not marked %q:\n%s", code, mark, got)
		}
	}
}
