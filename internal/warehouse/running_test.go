package warehouse_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
)

// The as-of views add the months before a date's (monthly projections) to
// the days of its month up to it (by_day projections): every date around a
// month's or a year's edge must give what counting the events themselves
// gives, a late event that moves a resident to an earlier month included.
func TestAsOfFiguresAtEveryMonthsEdgeAreThoseOfTheEventsThemselves(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	const act, enr = events.TypeActivation, events.TypeEnrolment
	write(t, conn,
		event(act, "ani", "17.71", "2024-12-31 23:00"),
		event(act, "budi", "17.71", "2025-01-31 23:59"),
		event(act, "citra", "17.71", "2025-02-01 00:00"),
		event(act, "dewi", "17.02", "2025-02-14 10:00"),
		event(enr, "dewi", "17.02", "2025-02-15 10:00"),
		event(act, "eko", "18.71", "2025-02-28 12:00"),
		event(act, "fajar", "18.71", "2025-03-01 08:00"),
		event(act, "gita", "17.71", "2025-12-31 23:30"),
	)
	// fajar's earlier event arrives late: from March to January.
	write(t, conn, event(act, "fajar", "18.71", "2025-01-15 08:00"), event(act, "citra", "17.71", "2025-03-03 08:00"))

	dates := []string{"2024-12-31", "2025-01-01", "2025-01-14", "2025-01-15", "2025-01-31", "2025-02-01",
		"2025-02-14", "2025-02-15", "2025-02-28", "2025-03-01", "2025-06-30", "2025-12-31", "2026-01-01"}
	for _, day := range dates {
		for _, v := range []struct{ view, key string }{
			{"attainment_city", "city_code"},
			{"attainment_province", "province_code"},
			{"attainment_national", "''"},
		} {
			// The events' own figures: residents whose first event of the
			// year is on or before day, and the newest activation.
			n := count(t, conn, fmt.Sprintf(`SELECT count() FROM
				(SELECT year, %[2]s AS region, activated, enrolled, last_activation_at FROM ikd.%[1]s_as_of(as_of = '%[3]s')) AS v
				FULL JOIN
				(SELECT toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year, %[2]s AS region,
				        uniqExactIf(resident, type = 'activation') AS activated, uniqExactIf(resident, type = 'enrolment') AS enrolled,
				        if(countIf(type = 'activation') = 0, NULL, toTimeZone(maxIf(occurred_at, type = 'activation'), 'Asia/Jakarta')) AS last_activation_at
				 FROM ikd.events FINAL WHERE toDate(occurred_at, 'Asia/Jakarta') <= '%[3]s' GROUP BY year, region) AS e
				USING (year, region)
				WHERE v.activated != e.activated OR v.enrolled != e.enrolled OR NOT (v.last_activation_at <=> e.last_activation_at)`,
				v.view, v.key, day))
			if n != 0 {
				t.Errorf("%s as of %s: %d regions differ from the events' own figures", v.view, day, n)
			}
		}
	}
	ledgerIsConsistent(t, conn)
}

// The views without a date read the yearly projections, not the as-of form:
// they must give every column of the as-of form at today.
func TestRunningViewsAreTheirAsOfFormAtToday(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	now := time.Now().In(events.WIB)
	at := func(d time.Duration) string { return now.Add(-d).Format("2006-01-02 15:04") }
	const act, enr = events.TypeActivation, events.TypeEnrolment
	write(t, conn,
		event(act, "ani", "17.71", at(time.Hour)),
		event(act, "budi", "17.71", at(40*24*time.Hour)),
		event(enr, "budi", "17.71", at(41*24*time.Hour)),
		event(act, "citra", "18.71", at(400*24*time.Hour)), // last year, most days
		event(act, "dewi", "17.02", at(2*time.Hour)),
	)
	write(t, conn, event(act, "ani", "17.71", at(3*24*time.Hour)))
	today := now.Format("2006-01-02")
	for _, view := range []string{"attainment_city", "attainment_province", "attainment_national"} {
		n := count(t, conn, fmt.Sprintf(`SELECT count() FROM
			((SELECT * FROM ikd.%[1]s EXCEPT SELECT * FROM ikd.%[1]s_as_of(as_of = '%[2]s'))
			 UNION ALL
			 (SELECT * FROM ikd.%[1]s_as_of(as_of = '%[2]s') EXCEPT SELECT * FROM ikd.%[1]s))`, view, today))
		if n != 0 {
			t.Errorf("%s and its as-of form at %s differ in %d rows", view, today, n)
		}
		if rows := count(t, conn, "SELECT count() FROM ikd."+view+" WHERE activated > 0"); rows == 0 {
			t.Errorf("%s counts nobody: the comparison proves nothing", view)
		}
	}
}

// The point of migration 010: every view reads the ledger's counts and
// newest times (013) through its small projections, never its rows.
func TestViewsReadTheLedgerThroughItsProjections(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	// The engine picks, per read, whichever of the table and its projections
	// has the fewest granules to read: the choice means something only when
	// they differ, so fill a year of 500 cities' days first (rows straight
	// into the tables: this test is about the plans, not the counts).
	for _, sql := range []string{
		`INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign)
		 SELECT 'activation', 2025, MD5(toString(number)), toString(10 + number % 500 % 30),
		        concat(toString(10 + number % 500 % 30), '.', toString(number % 500)), toDate('2025-01-01') + intDiv(number, 500) % 365, 1
		 FROM numbers(500 * 365 * 2)`,
		`INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign, last_at)
		 SELECT type, year, toFixedString('', 16), province_code, city_code, day, 0, toDateTime64(day, 3, 'UTC') FROM ikd.first_seen`,
	} {
		if err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		sql  string
		want []string
	}{
		{"SELECT * FROM ikd.attainment_city WHERE year = 2025", []string{"(yearly)"}},
		{"SELECT * FROM ikd.attainment_province WHERE year = 2025", []string{"(yearly)"}},
		{"SELECT * FROM ikd.attainment_national WHERE year = 2025", []string{"(yearly)"}},
		{"SELECT * FROM ikd.attainment_city_as_of(as_of = '2025-03-10') WHERE year = 2025", []string{"(monthly)", "(by_day)"}},
		{"SELECT * FROM ikd.attainment_province_as_of(as_of = '2025-03-10') WHERE year = 2025", []string{"(monthly)", "(by_day)"}},
		{"SELECT * FROM ikd.attainment_national_as_of(as_of = '2025-03-10') WHERE year = 2025", []string{"(monthly)", "(by_day)"}},
		// The board's newest counted event (papan.Store.Newest).
		{"SELECT max(last_at) FROM ikd.first_seen", []string{"(yearly)"}},
	} {
		plan := explain(t, conn, c.sql)
		for _, w := range c.want {
			if !strings.Contains(plan, "ReadFromMergeTree "+w) {
				t.Errorf("%s: no read of the %s projection in its plan:\n%s", c.sql, w, plan)
			}
		}
		for _, line := range strings.Split(plan, "\n") {
			if strings.Contains(line, "ReadFromMergeTree (ikd.first_seen)") {
				t.Errorf("%s reads a table's rows rather than a projection:\n%s", c.sql, plan)
				break
			}
		}
		// A condition on year makes the engine analyse the ledger's own
		// primary key to weigh the table against its projections, which
		// costs more than reading a projection whole (25 ms a read at
		// national scale): the only key a read of a projection uses is
		// by_day's day, which the table's key does not hold, and the as-of
		// views read the days of their month through it (migration 014).
		byDay := false
		for _, r := range projectionReads(plan) {
			dayKey := r.name == "(by_day)" && slices.Equal(r.keys, []string{"day"})
			if len(r.keys) > 0 && !dayKey {
				t.Errorf("%s reads the %s projection through the key %q:\n%s", c.sql, r.name, r.keys, plan)
			}
			byDay = byDay || dayKey
		}
		if slices.Contains(c.want, "(by_day)") && !byDay {
			t.Errorf("%s reads the by_day projection without its key on day:\n%s", c.sql, plan)
		}
	}
}

// projectionRead is a read of one of the ledger's projections in a plan:
// the projection, and the key columns its condition uses.
type projectionRead struct {
	name string
	keys []string
}

// projectionReads lists plan's reads of the ledger's projections.
func projectionReads(plan string) []projectionRead {
	var reads []projectionRead
	var r *projectionRead
	inKeys := false
	for _, line := range strings.Split(plan, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "ReadFrom"):
			r, inKeys = nil, false
			if name := strings.TrimPrefix(line, "ReadFromMergeTree "); slices.Contains([]string{"(yearly)", "(monthly)", "(by_day)"}, name) {
				reads = append(reads, projectionRead{name: name})
				r = &reads[len(reads)-1]
			}
		case r != nil && line == "Keys:":
			inKeys = true
		case r != nil && strings.HasPrefix(line, "Condition: "):
			r, inKeys = nil, false
		case inKeys:
			r.keys = append(r.keys, line)
		}
	}
	return reads
}

// explain is the engine's plan of sql, with the projections it reads.
func explain(t *testing.T, conn driver.Conn, sql string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "EXPLAIN indexes = 1, projections = 1 "+sql)
	if err != nil {
		t.Fatalf("explain %s: %v", sql, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}
