package warehouse_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ikd-pipeline/ikd/internal/events"
	"github.com/ikd-pipeline/ikd/internal/testenv"
	"github.com/ikd-pipeline/ikd/internal/warehouse"
)

// pseudonym is a resident's pseudonym as producers make them: 32 hex digits.
func pseudonym(name string) string { return fmt.Sprintf("%x", md5.Sum([]byte(name))) }

// event is an event of resident (by name) of typ in city at a WIB time
// ("2025-03-02 10:00"); its id is made of all of them.
func event(typ events.Type, name, city, wibTime string) warehouse.Record {
	at, err := time.ParseInLocation("2006-01-02 15:04", wibTime, time.FixedZone("WIB", 7*3600))
	if err != nil {
		panic(err)
	}
	return warehouse.Record{Event: events.Event{
		V: 1, EventID: pseudonym(string(typ) + name + city + wibTime), Type: typ, Resident: pseudonym(name),
		ProvinceCode: city[:2], CityCode: city, DistrictCode: city + ".01", OfficeID: "OFF-1",
		Channel: events.ChannelCounter, OccurredAt: at.UTC(),
	}}
}

func write(t *testing.T, conn driver.Conn, records ...warehouse.Record) {
	t.Helper()
	if err := warehouse.NewEventWriter(conn).Write(context.Background(), records); err != nil {
		t.Fatal(err)
	}
}

// figures reads activated/enrolled of a view's row; where is the row's key.
func figures(t *testing.T, conn driver.Conn, view, asOf, where string) (activated, enrolled uint64) {
	t.Helper()
	sql := fmt.Sprintf("SELECT activated, enrolled FROM ikd.%s_as_of(as_of = '%s') WHERE %s", view, asOf, where)
	if err := conn.QueryRow(context.Background(), sql).Scan(&activated, &enrolled); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return activated, enrolled
}

func wantFigures(t *testing.T, conn driver.Conn, view, asOf, where string, activated, enrolled uint64) {
	t.Helper()
	if a, e := figures(t, conn, view, asOf, where); a != activated || e != enrolled {
		t.Errorf("%s as of %s where %s: activated %d enrolled %d, want %d and %d", view, asOf, where, a, e, activated, enrolled)
	}
}

// ledgerIsConsistent checks that every counted resident's rows in a city add
// up to +1 on one day and 0 on every other (a resident taken out adds up to 0).
func ledgerIsConsistent(t *testing.T, conn driver.Conn) {
	t.Helper()
	n := count(t, conn, `SELECT count() FROM (
		SELECT type, year, city_code, resident FROM (
			SELECT type, year, city_code, resident, day, sum(sign) AS n FROM ikd.first_seen GROUP BY ALL HAVING n != 0)
		GROUP BY type, year, city_code, resident HAVING count() != 1 OR sum(n) != 1)`)
	if n != 0 {
		t.Errorf("%d counted residents whose ledger rows do not add up to +1 at one place", n)
	}
}

func TestViewsCountEachResidentOnceByDomicileAndProvincesAndTheNationAddUp(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	const act, enr = events.TypeActivation, events.TypeEnrolment
	write(t, conn,
		event(act, "ani", "17.71", "2025-03-02 09:00"),
		event(act, "ani", "17.71", "2025-04-02 09:00"), // activates again: once
		event(act, "budi", "17.71", "2025-03-05 09:00"),
		event(act, "citra", "17.02", "2025-03-05 09:00"),
		event(enr, "citra", "17.02", "2025-01-05 09:00"),
		event(act, "dewi", "18.71", "2025-06-01 09:00"),
	)
	write(t, conn, event(act, "budi", "17.71", "2025-05-05 09:00"), event(enr, "eko", "17.71", "2025-02-01 23:30"))
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.71'", 2, 1)
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.02'", 1, 1)
	wantFigures(t, conn, "attainment_city", "2025-03-04", "year = 2025 AND city_code = '17.71'", 1, 1)
	wantFigures(t, conn, "attainment_province", "2025-12-31", "year = 2025 AND province_code = '17'", 3, 2)
	wantFigures(t, conn, "attainment_province", "2025-12-31", "year = 2025 AND province_code = '18'", 1, 0)
	wantFigures(t, conn, "attainment_national", "2025-12-31", "year = 2025", 4, 2)
	wantFigures(t, conn, "attainment_national", "2025-03-04", "year = 2025", 1, 2)

	// Provinces are the sums of their cities, the nation of its provinces.
	if n := count(t, conn, `SELECT count() FROM ikd.attainment_province_as_of(as_of = '2025-12-31') AS p
		JOIN (SELECT year, province_code, sum(activated) AS a, sum(enrolled) AS e
		      FROM ikd.attainment_city_as_of(as_of = '2025-12-31') GROUP BY ALL) AS c USING (year, province_code)
		WHERE p.activated != c.a OR p.enrolled != c.e`); n != 0 {
		t.Errorf("%d provinces differ from the sum of their cities", n)
	}
	var last time.Time
	if err := conn.QueryRow(context.Background(), `SELECT assumeNotNull(last_activation_at) FROM ikd.attainment_national_as_of(as_of = '2025-12-31') WHERE year = 2025`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := event(act, "dewi", "18.71", "2025-06-01 09:00").OccurredAt; !last.Equal(want) {
		t.Errorf("last_activation_at %s, want the newest activation %s", last, want)
	}
	ledgerIsConsistent(t, conn)
}

func TestALateEventWithAnEarlierDayMovesTheResidentToThatDay(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	write(t, conn, event(events.TypeActivation, "ani", "17.71", "2025-03-02 09:00"))
	wantFigures(t, conn, "attainment_city", "2025-02-20", "year = 2025 AND city_code = '17.71'", 0, 0)
	write(t, conn, event(events.TypeActivation, "ani", "17.71", "2025-02-13 09:00"))
	wantFigures(t, conn, "attainment_city", "2025-02-12", "year = 2025 AND city_code = '17.71'", 0, 0)
	wantFigures(t, conn, "attainment_city", "2025-02-20", "year = 2025 AND city_code = '17.71'", 1, 0)
	wantFigures(t, conn, "attainment_city", "2025-03-02", "year = 2025 AND city_code = '17.71'", 1, 0)
	wantFigures(t, conn, "attainment_national", "2025-12-31", "year = 2025", 1, 0)
	ledgerIsConsistent(t, conn)
}

func TestLastYearsEventArrivingInJanuaryReopensLastYearOnly(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	write(t, conn, event(events.TypeActivation, "ani", "17.71", "2026-01-05 09:00"))
	// 00:30 on 1 January in WIB is still 31 December in UTC: this year's.
	write(t, conn, event(events.TypeActivation, "budi", "17.71", "2026-01-01 00:30"))
	write(t, conn, event(events.TypeActivation, "ani", "17.71", "2025-12-31 23:30"))
	wantFigures(t, conn, "attainment_city", "2026-01-10", "year = 2025 AND city_code = '17.71'", 1, 0)
	wantFigures(t, conn, "attainment_city", "2026-01-10", "year = 2026 AND city_code = '17.71'", 2, 0)
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.71'", 1, 0)
	ledgerIsConsistent(t, conn)
}

func TestARetriedOrRegroupedBatchCountsOnce(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	const act = events.TypeActivation
	a, b, c := event(act, "ani", "17.71", "2025-03-02 09:00"), event(act, "budi", "17.71", "2025-03-03 09:00"), event(act, "citra", "17.02", "2025-03-04 09:00")
	write(t, conn, a, b, c)
	// Rows of sign 0 count no one: they are the newest times (Newest).
	const counting = "SELECT count() FROM ikd.first_seen WHERE sign != 0"
	rows := count(t, conn, counting)
	write(t, conn, a, b, c)                                           // a retry
	write(t, conn, c, a)                                              // redelivered in another batch
	write(t, conn, b, event(act, "ani", "17.71", "2025-03-09 09:00")) // with a later event
	wantFigures(t, conn, "attainment_province", "2025-12-31", "year = 2025 AND province_code = '17'", 3, 0)
	if after := count(t, conn, counting); after != rows {
		t.Errorf("the ledger grew from %d to %d rows on events already counted", rows, after)
	}
	ledgerIsConsistent(t, conn)
}

// The events of one year as producers might send them: residents activating
// more than once, late events with earlier days, enrolments, over 5 cities.
const mixSQL = `INSERT INTO ikd.events (event_id, type, resident, province_code, city_code, district_code, office_id, channel, occurred_at, stream_seq)
SELECT
    concat('mix-', toString(number)) AS event_id,
    if(number % 7 = 0, 'enrolment', 'activation') AS type,
    lower(hex(MD5(toString(number % 3000)))) AS resident,
    ['17', '17', '18', '31', '32'][1 + (number % 3000) % 5] AS province_code,
    ['17.71', '17.02', '18.71', '31.71', '32.73'][1 + (number % 3000) % 5] AS city_code,
    concat(city_code, '.01') AS district_code,
    'OFF-1' AS office_id,
    'counter' AS channel,
    toDateTime64('2025-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(cityHash64(number) % (400 * 86400)) AS occurred_at,
    number AS stream_seq
FROM numbers(10000)`

// oldSQL are the figures as the sets of residents gave them, read straight
// from the events: unique residents per year and city up to a day, and the
// newest activation.
const oldSQL = `SELECT toUInt16(toYear(occurred_at, 'Asia/Jakarta')) AS year, toString(city_code) AS city,
    toUInt64(uniqExactIf(resident, type = 'activation')) AS activated, toUInt64(uniqExactIf(resident, type = 'enrolment')) AS enrolled,
    if(countIf(type = 'activation') = 0, NULL, toTimeZone(maxIf(occurred_at, type = 'activation'), 'Asia/Jakarta')) AS last
FROM ikd.events WHERE toDate(occurred_at, 'Asia/Jakarta') <= toDate('%s') GROUP BY year, city`

func TestRecountGivesTheFiguresOfTheSetsOfResidentsAndChangesNothingTwice(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	ctx := context.Background()
	exec(t, conn, mixSQL)
	// Some written by the writer too, as after an upgrade.
	write(t, conn, event(events.TypeActivation, "ani", "17.71", "2025-03-02 09:00"))
	if err := warehouse.Recount(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	rows := count(t, conn, "SELECT count() FROM ikd.first_seen")
	for _, asOf := range []string{"2025-02-01", "2025-07-01", "2026-01-31"} {
		diff := count(t, conn, fmt.Sprintf(`SELECT count() FROM (%s) AS old
			FULL JOIN (SELECT year, city_code AS city, activated, enrolled, last_activation_at AS last
			           FROM ikd.attainment_city_as_of(as_of = '%s') WHERE activated + enrolled > 0) AS new USING (year, city)
			WHERE old.activated != new.activated OR old.enrolled != new.enrolled OR NOT (old.last <=> new.last)`, fmt.Sprintf(oldSQL, asOf), asOf))
		if diff != 0 {
			t.Errorf("as of %s: %d city-years differ from the sets' figures", asOf, diff)
		}
	}
	if err := warehouse.Recount(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	if again := count(t, conn, "SELECT count() FROM ikd.first_seen"); again != rows {
		t.Errorf("a second recount wrote %d rows, want none", again-rows)
	}
	// A resident counted that no event supports is taken out again.
	exec(t, conn, `INSERT INTO ikd.first_seen (type, year, resident, province_code, city_code, day, sign)
		VALUES ('activation', 2025, MD5('forged'), '17', '17.71', '2025-01-01', 1)`)
	if err := warehouse.Recount(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	wantFigures(t, conn, "attainment_national", "2025-12-31", "year = 2025",
		count(t, conn, "SELECT uniqExact(resident) FROM ikd.events WHERE type = 'activation' AND toYear(occurred_at, 'Asia/Jakarta') = 2025"),
		count(t, conn, "SELECT uniqExact(resident) FROM ikd.events WHERE type = 'enrolment' AND toYear(occurred_at, 'Asia/Jakarta') = 2025"))
	ledgerIsConsistent(t, conn)
}

func TestAResidentWhoseEventsNameTwoCitiesCountsInEach(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	const act = events.TypeActivation
	write(t, conn, event(act, "ani", "17.71", "2025-03-02 09:00"), event(act, "ani", "17.02", "2025-03-02 10:00"))
	write(t, conn, event(act, "ani", "18.71", "2025-03-02 11:00"))
	write(t, conn, event(act, "ani", "17.71", "2025-03-01 11:00"), event(act, "ani", "18.71", "2025-03-03 11:00"))
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.71'", 1, 0)
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.02'", 1, 0)
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '18.71'", 1, 0)
	wantFigures(t, conn, "attainment_city", "2025-03-01", "year = 2025 AND city_code = '17.71'", 1, 0)
	ledgerIsConsistent(t, conn)
}

// A batch twice the aggregator's default size (5,000) names every resident in
// the ledger lookup, over more than one query; once, 5,000 were a query too
// long for the engine to parse.
func TestABatchOfTwiceTheAggregatorsDefaultSizeIsCountedAndItsRetryChangesNothing(t *testing.T) {
	conn, _ := testenv.MigratedWarehouse(t)
	batch := make([]warehouse.Record, 10001)
	for i := range batch {
		batch[i] = event(events.TypeActivation, fmt.Sprintf("resident-%d", i), "17.71", "2025-03-02 09:00")
	}
	write(t, conn, batch...)
	write(t, conn, batch...)
	wantFigures(t, conn, "attainment_city", "2025-12-31", "year = 2025 AND city_code = '17.71'", 10001, 0)
	ledgerIsConsistent(t, conn)
}
