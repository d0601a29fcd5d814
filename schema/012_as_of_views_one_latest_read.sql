-- The as-of views of 011 with one read of ikd.latest_daily instead of two.
-- The newest activation up to a date was read like the counts, the months
-- before the date's from the monthly projection and the days of its month
-- from the by_day one; but ikd.latest_daily holds a row per type, city and
-- day whatever the residents (375,000 at national scale), so reading its
-- by_day projection up to the date at once costs less than planning a second
-- read: on the national set, attainment_city_as_of took about 10 ms less
-- (p50 of 15 runs through the HTTP front, 62 to 74 ms against 72 to 84, in
-- three rounds; the same rows). The ledger keeps its two reads: its
-- projections have its 1,024-row granules (ikd.latest_daily's 8,192), and
-- the view reading both tables' by_day projections up to the date measured
-- no faster than 011's (90 against 85 ms, p50 of 15).
-- attainment_province_as_of reads attainment_city_as_of, so it follows.
-- Columns and meaning are those of 010.

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
    -- The residents first seen up to as_of: the months before as_of's from
    -- the ledger's monthly projection, the days of its month up to it from
    -- its by_day one; the newest activation up to as_of from the by_day
    -- projection of ikd.latest_daily, in one read.
    SELECT
        year,
        city_code,
        toUInt64(sumIf(n, type = 'activation')) AS activated,
        toUInt64(sumIf(n, type = 'enrolment')) AS enrolled,
        max(last_at) AS last_activation_at
    FROM
    (
        SELECT type, year, city_code, sum(sign) AS n, toDateTime64(0, 3, 'UTC') AS last_at
        FROM ikd.first_seen
        WHERE toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year, city_code
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, city_code, sum(sign) AS n, toDateTime64(0, 3, 'UTC') AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year, city_code
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day <= as_of_day
        GROUP BY type, year, city_code
        SETTINGS use_primary_key = 0
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
        max(last_at) AS last_activation_at
    FROM
    (
        SELECT type, year, sum(sign) AS n, toDateTime64(0, 3, 'UTC') AS last_at
        FROM ikd.first_seen
        WHERE toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, sum(sign) AS n, toDateTime64(0, 3, 'UTC') AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day <= as_of_day
        GROUP BY type, year
        SETTINGS use_primary_key = 0
    )
    GROUP BY year
) AS n ON n.year = y.year
LEFT JOIN
(
    SELECT year, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
    WHERE region_code = ''
) AS t ON t.year = y.year;
