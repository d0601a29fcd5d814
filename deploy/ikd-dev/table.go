package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ikd-pipeline/ikd/internal/broker"
)

// liveTable prints attainment by province for the current year every
// interval, until ctx ends. A failing query is printed, not fatal: the
// warehouse may be busy for a moment.
func liveTable(ctx context.Context, conn driver.Conn, js jetstream.JetStream, every time.Duration, w io.Writer) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := printTable(ctx, conn, js, w); err != nil && ctx.Err() == nil {
			fmt.Fprintf(w, "attainment table unavailable: %v\n", err)
		}
	}
}

// totals are what the data holds, whatever process wrote it and since when.
type totals struct {
	written      uint64 // distinct events in ikd.events
	deadLettered uint64 // messages in IKD_DEADLETTER
	firing       uint64 // alerts whose latest transition in ikd.alerts fires
	// provinces maps a province code to the highest severity firing for it
	// or one of its cities.
	provinces map[string]string
}

func readTotals(ctx context.Context, conn driver.Conn, js jetstream.JetStream) (totals, error) {
	t := totals{provinces: map[string]string{}}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM ikd.events").Scan(&t.written); err != nil {
		return t, fmt.Errorf("count events: %w", err)
	}
	stream, err := js.Stream(ctx, broker.DeadLetterStream)
	if err != nil {
		return t, fmt.Errorf("count dead letters: %w", err)
	}
	t.deadLettered = stream.CachedInfo().State.Msgs
	rows, err := conn.Query(ctx, `SELECT province_code, if(has(groupArray(severity), 'critical'), 'critical', 'warning'), toUInt64(count())
		FROM (SELECT argMax(province_code, at) AS province_code, argMax(severity, at) AS severity, argMax(state, at) AS state
		      FROM ikd.alerts GROUP BY rule, region_code, year)
		WHERE state = 'firing' GROUP BY province_code`)
	if err != nil {
		return t, fmt.Errorf("read firing alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var code, severity string
		var n uint64
		if err := rows.Scan(&code, &severity, &n); err != nil {
			return t, fmt.Errorf("read firing alerts: %w", err)
		}
		t.provinces[code] = severity
		t.firing += n
	}
	return t, rows.Err()
}

// printTable marks a province whose own alert, or one of whose cities'
// alerts, is firing, with the highest severity among them.
func printTable(ctx context.Context, conn driver.Conn, js jetstream.JetStream, w io.Writer) error {
	t, err := readTotals(ctx, conn, js)
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT province_code, province_name, activated, enrolled, target, attainment_pct, expected_pct, behind_pace
		FROM ikd.attainment_province WHERE year = toYear(as_of) ORDER BY province_code`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(&b, "\n%s  attainment by province (events written %d, dead-lettered %d, alerts firing %d)\n",
		time.Now().Format("15:04:05"), t.written, t.deadLettered, t.firing)
	fmt.Fprintln(tw, "code\tprovince\tactivated\tenrolled\ttarget\tattained %\texpected %\tpace\talert\t")
	var total, totalTarget uint64
	for rows.Next() {
		var code, name string
		var activated, enrolled, target uint64
		var attained, expected float64
		var behind bool
		if err := rows.Scan(&code, &name, &activated, &enrolled, &target, &attained, &expected, &behind); err != nil {
			return err
		}
		pace := "ok"
		if behind {
			pace = "BEHIND"
		}
		alert := "-"
		if severity, ok := t.provinces[code]; ok {
			alert = "! " + severity
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2f\t%.2f\t%s\t%s\t\n", code, name, activated, enrolled, target, attained, expected, pace, alert)
		total += activated
		totalTarget += target
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Fprintf(tw, "\tIndonesia\t%d\t\t%d\t\t\t\t\t\n", total, totalTarget)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = io.WriteString(w, b.String())
	return err
}
