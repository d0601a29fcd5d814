package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/consumers/aggregator"
	"github.com/ikd-pipeline/ikd/consumers/alerter"
)

// liveTable prints attainment by province for the current year every
// interval, until ctx ends. A failing query is printed, not fatal: the
// warehouse may be busy for a moment.
func liveTable(ctx context.Context, conn driver.Conn, agg *aggregator.Aggregator, alerts *alerter.Alerter, every time.Duration, w io.Writer) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := printTable(ctx, conn, agg, alerts.FiringProvinces(), w); err != nil && ctx.Err() == nil {
			fmt.Fprintf(w, "attainment table unavailable: %v\n", err)
		}
	}
}

// printTable marks a province whose own alert, or one of whose cities'
// alerts, is firing, with the highest severity among them.
func printTable(ctx context.Context, conn driver.Conn, agg *aggregator.Aggregator, firing map[string]alerter.Severity, w io.Writer) error {
	rows, err := conn.Query(ctx, `SELECT province_code, province_name, activated, enrolled, target, attainment_pct, expected_pct, behind_pace
		FROM ikd.attainment_province WHERE year = toYear(as_of) ORDER BY province_code`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(&b, "\n%s  attainment by province (events written %d, dead-lettered %d)\n",
		time.Now().Format("15:04:05"), agg.Stats.Written.Load(), agg.Stats.DeadLettered.Load())
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
		if severity, ok := firing[code]; ok {
			alert = "! " + string(severity)
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
