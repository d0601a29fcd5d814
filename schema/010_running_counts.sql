-- Running counts that cost the same at national scale as in a small office
-- (README, "Counting at ingest"). The views of 008 summed the ledger's daily
-- projection, ordered by region and then day, so every read, even "today",
-- went through every region's every day of the year (375,000 rows at national
-- scale), and likewise ikd.latest_daily. Two projections in each table replace
-- it, both written in the same part as the rows they sum (atomic with them):
--   yearly: per type, year and region, for the running figures (a few hundred
--           rows however many residents);
--   monthly: per month, for the whole months before a date;
--   by_day: per day first, for the days of a date's month up to it,
-- so that a figure as of a date reads a few rows per region and month instead
-- of every day's.
-- The views keep their columns and meaning; ikd.attainment_city and the other
-- views without a date now read the yearly projections instead of being their
-- as-of form at today: they count everything counted in the year so far, which
-- is the figure as of today, since events dated later than now plus the
-- decoder's tolerance for clock skew are refused.

ALTER TABLE ikd.first_seen ADD PROJECTION IF NOT EXISTS yearly
(
    SELECT type, year, province_code, city_code, sum(sign)
    GROUP BY type, year, province_code, city_code
);

ALTER TABLE ikd.first_seen ADD PROJECTION IF NOT EXISTS by_day
(
    SELECT type, year, day, province_code, city_code, sum(sign)
    GROUP BY type, year, day, province_code, city_code
);

ALTER TABLE ikd.first_seen ADD PROJECTION IF NOT EXISTS monthly
(
    SELECT type, year, province_code, city_code, toStartOfMonth(day), sum(sign)
    GROUP BY type, year, province_code, city_code, toStartOfMonth(day)
);

ALTER TABLE ikd.first_seen MATERIALIZE PROJECTION yearly SETTINGS mutations_sync = 1;

ALTER TABLE ikd.first_seen MATERIALIZE PROJECTION monthly SETTINGS mutations_sync = 1;

ALTER TABLE ikd.first_seen MATERIALIZE PROJECTION by_day SETTINGS mutations_sync = 1;

ALTER TABLE ikd.first_seen DROP PROJECTION IF EXISTS daily;

-- An AggregatingMergeTree keeps a projection only when told what to do with it
-- as parts merge: rebuild it from the merged rows (max() is idempotent).
ALTER TABLE ikd.latest_daily MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE ikd.latest_daily ADD PROJECTION IF NOT EXISTS yearly
(
    SELECT type, year, province_code, city_code, max(last_at)
    GROUP BY type, year, province_code, city_code
);

ALTER TABLE ikd.latest_daily ADD PROJECTION IF NOT EXISTS by_day
(
    SELECT type, year, day, province_code, city_code, max(last_at)
    GROUP BY type, year, day, province_code, city_code
);

ALTER TABLE ikd.latest_daily ADD PROJECTION IF NOT EXISTS monthly
(
    SELECT type, year, province_code, city_code, toStartOfMonth(day), max(last_at)
    GROUP BY type, year, province_code, city_code, toStartOfMonth(day)
);

ALTER TABLE ikd.latest_daily MATERIALIZE PROJECTION yearly SETTINGS mutations_sync = 1;

ALTER TABLE ikd.latest_daily MATERIALIZE PROJECTION monthly SETTINGS mutations_sync = 1;

ALTER TABLE ikd.latest_daily MATERIALIZE PROJECTION by_day SETTINGS mutations_sync = 1;

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
        SELECT year FROM ikd.first_seen GROUP BY year
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
        UNION ALL
        SELECT type, year, city_code, sum(sign) AS n, toDateTime64(0, 3, 'UTC') AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year, city_code
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year, city_code
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year, city_code
    )
    GROUP BY year, city_code
) AS n ON n.year = y.year AND n.city_code = c.code
LEFT JOIN
(
    SELECT year, region_code, toString(kind) AS kind, value, recorded_baseline
    FROM ikd.targets FINAL
) AS t ON t.year = y.year AND t.region_code = c.code;

-- The running figures: the same as attainment_city_as_of at today, from the
-- yearly projections.
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
        SELECT year FROM ikd.first_seen GROUP BY year
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
        UNION ALL
        SELECT type, year, city_code, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation'
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
        SELECT year FROM ikd.first_seen GROUP BY year
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
        UNION ALL
        SELECT type, year, sum(sign) AS n, toDateTime64(0, 3, 'UTC') AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
        GROUP BY type, year
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation' AND day >= toStartOfMonth(as_of_day) AND day <= as_of_day
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
        SELECT year FROM ikd.first_seen GROUP BY year
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
        UNION ALL
        SELECT type, year, 0 AS n, max(last_at) AS last_at
        FROM ikd.latest_daily
        WHERE type = 'activation'
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
