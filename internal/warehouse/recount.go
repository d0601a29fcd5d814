package warehouse

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Recount brings the first-seen ledger in line with ikd.events, for every
// type and year: each resident's rows in each of their cities then add up to
// +1 on the day of their earliest event there and to 0 on every other day,
// and the newest time of each type, city and day is there (recountNewest).
// On an empty ledger it is the backfill of events written before the ledger
// existed (migration 007, or a bulk load straight into ikd.events such as
// the bench's); on a full one it writes only the differences, so running it
// twice changes nothing. It must not run while an aggregator writes.
func Recount(ctx context.Context, conn driver.Conn, logger *slog.Logger) error {
	return recount(ctx, conn, logger, recountResidents, recountNewest)
}

// recountStep is one part of Recount for one type and year.
type recountStep func(ctx context.Context, conn driver.Conn, y countedYear) error

// recountResidents is Recount's counting of the residents.
func recountResidents(ctx context.Context, conn driver.Conn, y countedYear) error {
	var held uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM ikd.first_seen WHERE type = ? AND year = ? AND sign != 0", y.Type, y.Year).Scan(&held); err != nil {
		return err
	}
	sql, args := recountSQL, []any{y.Type, y.Year, y.Type, y.Year}
	if held == 0 {
		sql, args = backfillSQL, args[:2]
	}
	return conn.Exec(ctx, sql, args...)
}

// recountNewest writes the ledger's newest rows (Newest) of the events
// whose time is newer than the ledger holds for their type, city and day.
func recountNewest(ctx context.Context, conn driver.Conn, y countedYear) error {
	return conn.Exec(ctx, newestSQL, y.Type, y.Year, y.Type, y.Year)
}

// recountWith is recount of steps alone, as a migration runs it.
func recountWith(steps ...recountStep) func(context.Context, driver.Conn, *slog.Logger) error {
	return func(ctx context.Context, conn driver.Conn, logger *slog.Logger) error {
		return recount(ctx, conn, logger, steps...)
	}
}

// recount runs steps for every type and year of the events and the ledger,
// listed once (a scan of ikd.events), logging the time each year took.
func recount(ctx context.Context, conn driver.Conn, logger *slog.Logger, steps ...recountStep) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	years, err := countedYears(ctx, conn)
	if err != nil {
		return err
	}
	// Rows are the differences computed from the ledger as it is: the
	// deduplication of identical blocks would only get in the way. A year of
	// the nation is one statement of minutes, longer than a front's limit
	// for an analyst's query.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplicate": 0, "max_execution_time": 0}))
	for _, y := range years {
		start := time.Now()
		for _, step := range steps {
			if err := step(ctx, conn, y); err != nil {
				return fmt.Errorf("recount %s %d: %w", y.Type, y.Year, err)
			}
		}
		logger.Info("first-seen ledger recounted", "type", y.Type, "year", y.Year, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

type countedYear struct {
	Type string
	Year uint16
}

// countedYears lists the types and years of the events and of the ledger.
func countedYears(ctx context.Context, conn driver.Conn) ([]countedYear, error) {
	rows, err := conn.Query(ctx, `SELECT DISTINCT toString(type), year FROM
		(SELECT type, toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year FROM ikd.events GROUP BY type, year
		 UNION ALL SELECT type, year FROM ikd.first_seen GROUP BY type, year)
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("recount: list the years: %w", err)
	}
	defer rows.Close()
	var out []countedYear
	for rows.Next() {
		var y countedYear
		if err := rows.Scan(&y.Type, &y.Year); err != nil {
			return nil, fmt.Errorf("recount: list the years: %w", err)
		}
		out = append(out, y)
	}
	return out, rows.Err()
}

// firstDaysSQL is each resident's first day in each of their cities among
// the events of one type and year.
const firstDaysSQL = `SELECT type, toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year,
		toString(province_code) AS province_code, toString(city_code) AS city_code, ` + residentKeySQL + ` AS resident,
		min(toDate(occurred_at, 'Asia/Jakarta')) AS day
	FROM ikd.events
	WHERE type = ? AND toYear(occurred_at, 'Asia/Jakarta') = ?
	GROUP BY type, year, province_code, city_code, resident`

// backfillSQL fills an empty ledger: +1 on every resident's first day.
const backfillSQL = `INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign)
SELECT type, year, resident, province_code, city_code, day, 1 FROM (` + firstDaysSQL + `)`

// recountSQL writes what the ledger lacks: +1 on the first day per the
// events, less what the ledger's rows already add up to on each day.
const recountSQL = `INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign)
SELECT type, year, resident, province_code, city_code, day, toInt8(sum(n)) FROM
(
	SELECT type, year, resident, province_code, city_code, day, toInt64(1) AS n
	FROM (` + firstDaysSQL + `)
	UNION ALL
	SELECT toString(type), year, resident, toString(province_code), toString(city_code), day, -sum(sign)
	FROM ikd.first_seen WHERE type = ? AND year = ?
	GROUP BY type, year, resident, province_code, city_code, day
)
GROUP BY type, year, resident, province_code, city_code, day
HAVING sum(n) != 0`

// newestSQL writes the newest time of the events of each city and day of
// one type and year that is newer than the ledger's newest rows hold.
const newestSQL = `INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign, last_at)
SELECT type, year, toFixedString('', 16), province_code, city_code, day, 0, at FROM
(
	SELECT toString(type) AS type, toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year,
		toString(province_code) AS province_code, toString(city_code) AS city_code,
		toDate(occurred_at, 'Asia/Jakarta') AS day, max(occurred_at) AS at
	FROM ikd.events
	WHERE type = ? AND toYear(occurred_at, 'Asia/Jakarta') = ?
	GROUP BY type, year, province_code, city_code, day
) AS e
LEFT JOIN
(
	SELECT toString(type) AS type, year, toString(province_code) AS province_code, toString(city_code) AS city_code,
		day, max(last_at) AS held
	FROM ikd.first_seen
	WHERE type = ? AND year = ? AND sign = 0
	GROUP BY type, year, province_code, city_code, day
) AS l USING (type, year, province_code, city_code, day)
WHERE at > held`
