package papan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Warehouse is what the page needs of a ClickHouse connection: reading.
type Warehouse interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
}

// Store reads the attainment views, targets and alerts. Every value goes to
// the warehouse as a bound query parameter ({name:Type}), never in the text.
type Store struct {
	db Warehouse
}

// NewStore reads through db.
func NewStore(db Warehouse) *Store { return &Store{db: db} }

func bind(ctx context.Context, params map[string]string) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithParameters(params))
}

func dayParams(day time.Time) map[string]string {
	return map[string]string{"day": day.Format(time.DateOnly), "year": strconv.Itoa(day.Year())}
}

// lastActivation is NULL in the views for a region without any activation in
// the year; the board reads that as the zero time and shows "–".
const lastActivation = `ifNull(last_activation_at, toDateTime64(0, 3, 'Asia/Jakarta'))`

const provinceColumns = `province_code, province_name, activated, enrolled, target, attainment_pct, expected_pct, behind_pace, ` + lastActivation
const cityColumns = `city_code, city_name, activated, enrolled, target, attainment_pct, expected_pct, behind_pace, ` + lastActivation

// Provinces are the 38 provinces as of the end of day (WIB), for day's year.
func (s *Store) Provinces(ctx context.Context, day time.Time) ([]Region, error) {
	q := `SELECT ` + provinceColumns + ` FROM ikd.attainment_province_as_of(as_of = {day:Date})
		WHERE year = {year:UInt16} ORDER BY province_code`
	return s.regions(bind(ctx, dayParams(day)), "provinces", q)
}

// Cities are the cities of province as of the end of day.
func (s *Store) Cities(ctx context.Context, day time.Time, province string) ([]Region, error) {
	p := dayParams(day)
	p["province"] = province
	q := `SELECT ` + cityColumns + ` FROM ikd.attainment_city_as_of(as_of = {day:Date})
		WHERE year = {year:UInt16} AND province_code = {province:String} ORDER BY city_code`
	return s.regions(bind(ctx, p), "cities of "+province, q)
}

// City is one city as of the end of day, and its province's code and name;
// found is false for a code the reference data lacks.
func (s *Store) City(ctx context.Context, day time.Time, city string) (r Region, province Region, found bool, err error) {
	p := dayParams(day)
	p["city"] = city
	rows, err := s.db.Query(bind(ctx, p), `SELECT `+cityColumns+`, province_code, province_name
		FROM ikd.attainment_city_as_of(as_of = {day:Date}) WHERE year = {year:UInt16} AND city_code = {city:String}`)
	if err != nil {
		return r, province, false, fmt.Errorf("read city %s: %w", city, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return r, province, false, rows.Err()
	}
	if err := rows.Scan(&r.Code, &r.Name, &r.Activated, &r.Enrolled, &r.Target, &r.AttainmentPct, &r.ExpectedPct,
		&r.BehindPace, &r.LastActivation, &province.Code, &province.Name); err != nil {
		return r, province, false, fmt.Errorf("read city %s: %w", city, err)
	}
	return r, province, true, rows.Err()
}

func (s *Store) regions(ctx context.Context, what, q string) ([]Region, error) {
	rows, err := s.db.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	var out []Region
	for rows.Next() {
		var r Region
		if err := rows.Scan(&r.Code, &r.Name, &r.Activated, &r.Enrolled, &r.Target, &r.AttainmentPct, &r.ExpectedPct,
			&r.BehindPace, &r.LastActivation); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}

// Target is region's row of ikd.targets for year (the latest one; the empty
// code is the nation's), or nil when there is none.
func (s *Store) Target(ctx context.Context, year int, region string) (*Target, error) {
	ctx = bind(ctx, map[string]string{"year": strconv.Itoa(year), "region": region})
	var t Target
	err := s.db.QueryRow(ctx, `SELECT toString(kind), value, recorded_baseline FROM ikd.targets FINAL
		WHERE year = {year:UInt16} AND region_code = {region:String} ORDER BY updated_at DESC LIMIT 1`).Scan(&t.Kind, &t.Value, &t.RecordedBaseline)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the target of %q in %d: %w", region, year, err)
	}
	return &t, nil
}

// ProvinceName is the name of the province code in the reference data.
func (s *Store) ProvinceName(ctx context.Context, code string) (string, bool, error) {
	var name string
	err := s.db.QueryRow(bind(ctx, map[string]string{"code": code}), `SELECT name FROM ikd.provinces FINAL WHERE code = {code:String}`).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read province %s: %w", code, err)
	}
	return name, true, nil
}

// endOf is the first instant after day (WIB), in UTC as ikd.alerts keeps it.
func endOf(day time.Time) string {
	d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, WIB).AddDate(0, 0, 1)
	return d.UTC().Format("2006-01-02 15:04:05.000")
}

// Firing maps each region with an alert firing at the end of day to the
// highest severity among its firing rules: an alert's state then is its
// latest transition before that moment.
func (s *Store) Firing(ctx context.Context, day time.Time) (map[string]string, error) {
	p := dayParams(day)
	p["until"] = endOf(day)
	rows, err := s.db.Query(bind(ctx, p), `SELECT region_code, argMax(severity, at) AS sev
		FROM ikd.alerts FINAL WHERE year = {year:UInt16} AND at < {until:DateTime64(3, 'UTC')}
		GROUP BY rule, region_code HAVING argMax(state, at) = 'firing'`)
	if err != nil {
		return nil, fmt.Errorf("read firing alerts: %w", err)
	}
	defer rows.Close()
	firing := map[string]string{}
	for rows.Next() {
		var region, severity string
		if err := rows.Scan(&region, &severity); err != nil {
			return nil, fmt.Errorf("read firing alerts: %w", err)
		}
		if severityRank[severity] >= severityRank[firing[region]] {
			firing[region] = severity
		}
	}
	return firing, rows.Err()
}

// AlertEvent is one transition of a region's alert.
type AlertEvent struct {
	Rule, Severity, State, Message string
	At                             time.Time
}

// Alerts are region's alert transitions of day's year up to the end of
// day, newest first, at most limit.
func (s *Store) Alerts(ctx context.Context, day time.Time, region string, limit int) ([]AlertEvent, error) {
	p := dayParams(day)
	p["until"], p["region"], p["limit"] = endOf(day), region, strconv.Itoa(limit)
	rows, err := s.db.Query(bind(ctx, p), `SELECT rule, severity, state, message, at FROM ikd.alerts FINAL
		WHERE region_code = {region:String} AND year = {year:UInt16} AND at < {until:DateTime64(3, 'UTC')}
		ORDER BY at DESC, state LIMIT {limit:UInt32}`)
	if err != nil {
		return nil, fmt.Errorf("read alerts of %s: %w", region, err)
	}
	defer rows.Close()
	var out []AlertEvent
	for rows.Next() {
		var a AlertEvent
		if err := rows.Scan(&a.Rule, &a.Severity, &a.State, &a.Message, &a.At); err != nil {
			return nil, fmt.Errorf("read alerts of %s: %w", region, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Point is a cumulative count at the end of a day.
type Point struct {
	Day   time.Time
	Count uint64
}

// Cumulative is city's unique activated residents of year counted up to the
// end of each day on which residents were first seen, up to until: a
// resident activating twice is counted on the first day only, as the views
// count.
func (s *Store) Cumulative(ctx context.Context, city string, year int, until time.Time) ([]Point, error) {
	p := map[string]string{"city": city, "year": strconv.Itoa(year), "until": until.Format(time.DateOnly)}
	// The first-seen ledger's daily counts (its projection) add up to the
	// residents first seen by each day.
	rows, err := s.db.Query(bind(ctx, p), `SELECT day, toUInt64(sum(n) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
		FROM (SELECT day, sum(sign) AS n FROM ikd.first_seen
		      WHERE type = 'activation' AND city_code = {city:String} AND year = {year:UInt16} AND day <= {until:Date}
		      GROUP BY day HAVING n != 0)
		ORDER BY day`)
	if err != nil {
		return nil, fmt.Errorf("read the activations of %s in %d: %w", city, year, err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var pt Point
		if err := rows.Scan(&pt.Day, &pt.Count); err != nil {
			return nil, fmt.Errorf("read the activations of %s in %d: %w", city, year, err)
		}
		out = append(out, pt)
	}
	return out, rows.Err()
}

// Newest is the time of the newest event the views count (of any type), zero
// when there is none.
func (s *Store) Newest(ctx context.Context) (time.Time, error) {
	var at time.Time
	if err := s.db.QueryRow(ctx, `SELECT max(last_at) FROM ikd.first_seen`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("read the newest counted event: %w", err)
	}
	return at, nil
}
