-- The as-of views of 013, their read of the as-of month's days through the
-- by_day projection's key. 011 read every projection whole
-- (use_primary_key = 0), because a condition on year, which the views'
-- callers put (WHERE year = 2025) and the engine pushes down into the
-- ledger's reads, makes the engine analyse the ledger's own primary key
-- (type, year, resident: 55 million rows at national scale) to weigh it
-- against the projections, which costs more than reading a projection whole.
-- But the whole of by_day is every city's every day (375,000 rows a year at
-- national scale), and that read was the views' largest. The read of the
-- as-of month's days now takes its year from the day (the ledger's year is
-- its day's, both in WIB), so the pushed-down condition is on day, which
-- the table's key does not hold and by_day's does: measured on the national
-- set (2026-12-01, 25 runs each taking turns, in the engine, without the
-- HTTP front), that read alone 13 ms against 23 (p50), and
-- attainment_city_as_of 64 against 75 ms, attainment_province_as_of (which
-- reads it) 106 against 115, attainment_national_as_of 58 against 64; the
-- same rows. The months before the as-of month's keep their whole read of
-- monthly (its key is the month, so the trick does not apply; and no faster
-- with the key: 9 against 10 ms). Columns and meaning are those of 010.

CREATE OR REPLACE VIEW ikd.attainment_city_as_of AS
WITH
    {as_of:Date} AS as_of_day,
    toYear(as_of_day) AS as_of_year
SELECT
    y.year AS year,
    c.province_code AS province_code,
    p.name AS province_name,
    c.code AS city_code,
    c.name AS city_name,
    n.activated AS activated,
    n.enrolled AS enrolled,
    if(t.kind = '', 'percent_of_recorded', t.kind) AS target_kind,
    toUInt64(if(t.kind = 'absolute', t.value,
        ceil(if(t.kind = '', 25, t.value) / 100 * (t.recorded_baseline + n.enrolled)))) AS target,
    if(target = 0, 0, round(100 * activated / target, 2)) AS attainment_pct,
    round(100 * multiIf(year < as_of_year, 1, year > as_of_year, 0,
        toDayOfYear(as_of_day) / toDayOfYear(makeDate(year, 12, 31))), 2) AS expected_pct,
    target > 0 AND attainment_pct < expected_pct AS behind_pace,
    -- WIB, as the registry reads it; NULL when there was none.
    if(n.last_activation_at > toDateTime64(0, 3, 'UTC'),
        toTimeZone(n.last_activation_at, 'Asia/Jakarta'), NULL) AS last_activation_at,
    as_of_day AS as_of
FROM ikd.cities AS c FINAL
CROSS JOIN
(
    SELECT DISTINCT year FROM
    (
        SELECT year FROM ikd.first_seen GROUP BY year SETTINGS use_primary_key = 0
        UNION ALL SELECT year FROM ikd.targets
        UNION ALL SELECT toUInt16(as_of_year)
    )
    WHERE year <= as_of_year
) AS y
LEFT JOIN (SELECT * FROM ikd.provinces FINAL) AS p ON p.code = c.province_code
LEFT JOIN
(
    -- The residents first seen up to as_of, and the newest activation up
    -- to it: the months before as_of's from the ledger's monthly
    -- projection, the days of its month up to it from its by_day one,
    -- found through that projection's key on day (the header says why the
    -- year is taken from the day there).
    SELECT
        year,
        city_code,
        toUInt64(sumIf(n, type = 'activation')) AS activated,
        toUInt64(sumIf(n, type = 'enrolment')) AS enrolled,
        maxIf(last_at, type = 'activation') AS last_activation_at
    FROM
    (
        SELECT type, year, city_code, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year, city_code
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, toUInt16(toYear(day)) AS year, city_code, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year, city_code
    )
    GROUP BY year, city_code
) AS n ON n.year = y.year AND n.city_code = c.code
LEFT JOIN
(
    SELECT year, region_code, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
) AS t ON t.year = y.year AND t.region_code = c.code;

CREATE OR REPLACE VIEW ikd.attainment_national_as_of AS
WITH
    {as_of:Date} AS as_of_day,
    toYear(as_of_day) AS as_of_year
SELECT
    y.year AS year,
    n.activated AS activated,
    n.enrolled AS enrolled,
    if(t.kind = '', 'percent_of_recorded', t.kind) AS target_kind,
    toUInt64(if(t.kind = 'absolute', t.value,
        ceil(if(t.kind = '', 25, t.value) / 100 * (t.recorded_baseline + n.enrolled)))) AS target,
    if(target = 0, 0, round(100 * activated / target, 2)) AS attainment_pct,
    round(100 * multiIf(year < as_of_year, 1, year > as_of_year, 0,
        toDayOfYear(as_of_day) / toDayOfYear(makeDate(year, 12, 31))), 2) AS expected_pct,
    target > 0 AND attainment_pct < expected_pct AS behind_pace,
    if(n.last_activation_at > toDateTime64(0, 3, 'UTC'),
        toTimeZone(n.last_activation_at, 'Asia/Jakarta'), NULL) AS last_activation_at,
    as_of_day AS as_of
FROM
(
    SELECT DISTINCT year FROM
    (
        SELECT year FROM ikd.first_seen GROUP BY year SETTINGS use_primary_key = 0
        UNION ALL SELECT year FROM ikd.targets
        UNION ALL SELECT toUInt16(as_of_year)
    )
    WHERE year <= as_of_year
) AS y
LEFT JOIN
(
    SELECT
        year,
        toUInt64(sumIf(n, type = 'activation')) AS activated,
        toUInt64(sumIf(n, type = 'enrolment')) AS enrolled,
        maxIf(last_at, type = 'activation') AS last_activation_at
    FROM
    (
        SELECT type, year, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, toUInt16(toYear(day)) AS year, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year
    )
    GROUP BY year
) AS n ON n.year = y.year
LEFT JOIN
(
    SELECT year, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
    WHERE region_code = ''
) AS t ON t.year = y.year;
