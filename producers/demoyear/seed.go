package demoyear

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/region"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// wib is the registry's clock, in which years begin.
var wib = time.FixedZone("WIB", 7*3600)

// Result says what Seed did.
type Result struct {
	Year int
	// Kept is set when the year already had targets (an admin's, or an
	// earlier seed's): nothing was written.
	Kept                bool
	Activations         uint64 // this year's, up to yesterday
	ActivationsLastYear uint64
	Target              uint64 // the nation's, this year
}

// Seed writes the simulated year of now (WIB) and the year before into the
// warehouse, once: a year that has targets is kept as it is. Events go into
// ikd.events and are counted by warehouse.Recount, dated from 1 January to the end of yesterday (last year:
// through the whole year), so today belongs to the live simulator; targets go
// into ikd.targets, 25 % of recorded residents per city, province and the
// nation. Events are written before targets, so a seed cut short is done
// again at the next start, and counts nothing twice (Recount writes only
// what the ledger lacks).
func Seed(ctx context.Context, db driver.Conn, ref *region.Reference, now time.Time, cfg Config) (Result, error) {
	now = now.In(wib)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, wib)
	res := Result{Year: today.Year()}
	if cfg.Scale <= 0 {
		res.Kept = true
		return res, nil
	}
	thisYear, err := hasTargets(ctx, db, res.Year)
	if err != nil || thisYear {
		res.Kept = thisYear
		return res, err
	}
	lastYear, err := hasTargets(ctx, db, res.Year-1)
	if err != nil {
		return res, err
	}
	plan := Plan(ref, today, cfg.Scale)
	jan1 := time.Date(res.Year, 1, 1, 0, 0, 0, 0, wib)
	if err := insertEvents(ctx, db, plan, res.Year, jan1, today, func(c City) uint64 { return c.Activations }); err != nil {
		return res, err
	}
	if !lastYear {
		if err := insertEvents(ctx, db, plan, res.Year-1, jan1.AddDate(-1, 0, 0), jan1, func(c City) uint64 { return c.ActivationsLastYear }); err != nil {
			return res, err
		}
	}
	// Written straight into ikd.events, the residents are counted in the
	// first-seen ledger as a migration counts an existing warehouse's.
	if err := warehouse.Recount(ctx, db, nil); err != nil {
		return res, fmt.Errorf("demo year: count the residents: %w", err)
	}
	for _, c := range plan {
		res.Activations += c.Activations
		res.ActivationsLastYear += c.ActivationsLastYear
	}
	years := []int{res.Year}
	if !lastYear {
		years = append(years, res.Year-1)
	}
	national, err := insertTargets(ctx, db, plan, res.Year, years)
	res.Target = national
	return res, err
}

func hasTargets(ctx context.Context, db driver.Conn, year int) (bool, error) {
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(map[string]string{"year": strconv.Itoa(year)}))
	var n uint64
	if err := db.QueryRow(ctx, `SELECT count() FROM ikd.targets WHERE year = {year:UInt16}`).Scan(&n); err != nil {
		return false, fmt.Errorf("demo year: read the targets of %d: %w", year, err)
	}
	return n > 0, nil
}

// insertEvents writes count(c) activations of distinct simulated residents
// for every city, spread over [from, to) a little denser towards the end,
// as outreach picks up through a year; one in seven by outreach teams.
func insertEvents(ctx context.Context, db driver.Conn, plan []City, year int, from, to time.Time, count func(City) uint64) error {
	var b strings.Builder
	b.WriteByte('[')
	n := 0
	for _, c := range plan {
		if count(c) == 0 {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "('%s','%s','%s',%d)", c.ProvinceCode, c.Code, c.DistrictCode, count(c))
		n++
	}
	b.WriteByte(']')
	span := int64(to.Sub(from) / time.Millisecond)
	if n == 0 || span <= 0 {
		return nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithParameters(map[string]string{
		"plan": b.String(), "year": strconv.Itoa(year),
		"from": from.UTC().Format("2006-01-02 15:04:05.000"), "span": strconv.FormatInt(span-1, 10),
	}))
	err := db.Exec(ctx, `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
		SELECT
			concat('demo-', toString({year:UInt16}), '-', city, '-', toString(i)) AS id,
			'activation', id, province, city, district,
			concat(replaceAll(city, '.', ''), '-OFF-01'),
			if(i % 7 = 0, 'outreach', 'counter'),
			{from:DateTime64(3, 'UTC')} + toIntervalMillisecond(toUInt64(pow((cityHash64(city, i) % 1000000) / 1000000, 0.8) * {span:UInt64})),
			0
		FROM
		(
			SELECT t.1 AS province, t.2 AS city, t.3 AS district, t.4 AS n
			FROM (SELECT arrayJoin({plan:Array(Tuple(String, String, String, UInt64))}) AS t)
		)
		ARRAY JOIN range(n) AS i`)
	if err != nil {
		return fmt.Errorf("demo year: write the activations of %d: %w", year, err)
	}
	return nil
}

// insertTargets writes 25 % of recorded residents as the target of every
// city, province and the nation, for each of years (this year's or last
// year's plan), and returns this year's national target.
func insertTargets(ctx context.Context, db driver.Conn, plan []City, year int, years []int) (uint64, error) {
	batch, err := db.PrepareBatch(ctx, `INSERT INTO ikd.targets (year, region_code, kind, value, recorded_baseline)`)
	if err != nil {
		return 0, fmt.Errorf("demo year: write targets: %w", err)
	}
	var national uint64
	for _, y := range years {
		recorded := func(c City) uint64 { return c.Recorded }
		if y != year {
			recorded = func(c City) uint64 { return c.RecordedLastYear }
		}
		provinces := map[string]uint64{}
		var nation uint64
		for _, c := range plan {
			if err := batch.Append(uint16(y), c.Code, "percent_of_recorded", float64(targetPct), recorded(c)); err != nil {
				_ = batch.Abort()
				return 0, fmt.Errorf("demo year: write targets: %w", err)
			}
			provinces[c.ProvinceCode] += recorded(c)
			nation += recorded(c)
		}
		for code, r := range provinces {
			if err := batch.Append(uint16(y), code, "percent_of_recorded", float64(targetPct), r); err != nil {
				_ = batch.Abort()
				return 0, fmt.Errorf("demo year: write targets: %w", err)
			}
		}
		if err := batch.Append(uint16(y), "", "percent_of_recorded", float64(targetPct), nation); err != nil {
			_ = batch.Abort()
			return 0, fmt.Errorf("demo year: write targets: %w", err)
		}
		if y == year {
			national = Target(nation)
		}
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("demo year: write targets: %w", err)
	}
	return national, nil
}
