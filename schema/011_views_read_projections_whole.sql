-- The views of 010, each read of the ledger's projections told not to use
-- the primary key (use_primary_key = 0, ClickHouse 26.1 and later; the pinned
-- server is 26.5). A read filtered by year or day, as every figure is, made
-- the engine analyse the primary key of ikd.first_seen (type, year, resident)
-- to compare the table with its projections: at national scale 54,000 marks,
-- about 25 ms a read, more than reading the projection itself, and paid by
-- every branch of every view (the as-of city view read it six times). The
-- projections hold a few rows per city and day whatever the residents, so
-- they are read whole and filtered; the ledger's own lookups (one resident at
-- a time) keep the key. Columns and meaning are those of 010.

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
    -- The residents first seen up to as_of, and the newest activation: the
    -- months before as_of's from the monthly projections, the days of its
    -- month up to it from the by_day ones.
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
        WHERE type = 'activation' AND toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year, city_code
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day >= toStartOfMonth(as_of_day) AND day <= as_of_day
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

CREATE OR REPLACE VIEW ikd.attainment_city AS
WITH
    toDate(now(), 'Asia/Jakarta') AS as_of_day,
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
    -- Every resident counted in the year so far, and the newest activation,
    -- from the yearly projections.
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
        GROUP BY type, year, city_code
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation'
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

CREATE OR REPLACE VIEW ikd.attainment_province AS
WITH
    toDate(now(), 'Asia/Jakarta') AS as_of_day,
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
FROM ikd.attainment_city AS c
LEFT JOIN
(
    SELECT year, region_code, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
) AS t ON t.year = c.year AND t.region_code = c.province_code
GROUP BY c.year, c.province_code;

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
        WHERE type = 'activation' AND toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day >= toStartOfMonth(as_of_day) AND day <= as_of_day
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

CREATE OR REPLACE VIEW ikd.attainment_national AS
WITH
    toDate(now(), 'Asia/Jakarta') AS as_of_day,
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
        GROUP BY type, year
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation'
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
