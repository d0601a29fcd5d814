-- The attainment views over the counts kept at ingest (007_first_seen.sql):
-- the same columns and meaning as 006_times_and_alert_dedup.sql, but each
-- resident is counted once per type and year, where they were first seen,
-- instead of merging every day's set of residents when asked. And the nation:
-- ikd.attainment_national[_as_of], one row per year.

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
        SELECT year FROM ikd.latest_daily
        UNION ALL SELECT year FROM ikd.targets
        UNION ALL SELECT toUInt16(as_of_year)
    )
    WHERE year <= as_of_year
) AS y
LEFT JOIN (SELECT * FROM ikd.provinces FINAL) AS p ON p.code = c.province_code
LEFT JOIN
(
    -- Residents first seen up to as_of, from the ledger's projection (a few
    -- hundred thousand integers at national scale), and the newest activation.
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
        WHERE day <= as_of_day
        GROUP BY type, year, city_code
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day <= as_of_day
        GROUP BY type, year, city_code
    )
    GROUP BY year, city_code
) AS n ON n.year = y.year AND n.city_code = c.code
LEFT JOIN
(
    SELECT year, region_code, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
) AS t ON t.year = y.year AND t.region_code = c.code;

-- A province counts its cities' residents (a resident's domicile is one city,
-- so the sum is exact) against its own target; cities_target is the sum of
-- its cities' targets, which the registry may set apart from it.
CREATE OR REPLACE VIEW ikd.attainment_province_as_of AS
WITH
    {as_of:Date} AS as_of_day,
    toYear(as_of_day) AS as_of_year
SELECT
    c.year AS year,
    c.province_code AS province_code,
    any(c.province_name) AS province_name,
    sum(c.activated) AS activated,
    sum(c.enrolled) AS enrolled,
    if(any(t.kind) = '', 'percent_of_recorded', any(t.kind)) AS target_kind,
    toUInt64(if(any(t.kind) = 'absolute', any(t.value),
        ceil(if(any(t.kind) = '', 25, any(t.value)) / 100 * (any(t.recorded_baseline) + enrolled)))) AS target,
    sum(c.target) AS cities_target,
    if(target = 0, 0, round(100 * activated / target, 2)) AS attainment_pct,
    any(c.expected_pct) AS expected_pct,
    target > 0 AND attainment_pct < expected_pct AS behind_pace,
    max(c.last_activation_at) AS last_activation_at,
    as_of_day AS as_of
FROM ikd.attainment_city_as_of(as_of = as_of_day) AS c
LEFT JOIN
(
    SELECT year, region_code, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
) AS t ON t.year = c.year AND t.region_code = c.province_code
GROUP BY c.year, c.province_code;

CREATE OR REPLACE VIEW ikd.attainment_city AS
SELECT * FROM ikd.attainment_city_as_of(as_of = toDate(now(), 'Asia/Jakarta'));

CREATE OR REPLACE VIEW ikd.attainment_province AS
SELECT * FROM ikd.attainment_province_as_of(as_of = toDate(now(), 'Asia/Jakarta'));

-- The nation counts every resident of the ledger against its own target
-- (region code ''), read straight from the ledger rather than through the
-- province view, so that it costs no more than one city's row.
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
        SELECT year FROM ikd.latest_daily
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
        WHERE day <= as_of_day
        GROUP BY type, year
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day <= as_of_day
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

CREATE OR REPLACE VIEW ikd.attainment_national AS
SELECT * FROM ikd.attainment_national_as_of(as_of = toDate(now(), 'Asia/Jakarta'));
