-- The newest event times move into the ledger (README, "Exactly once").
-- ikd.latest_daily was filled by a materialized view from ikd.events, so
-- every batch the aggregator wrote made a part there, with three projections,
-- besides the ledger's, and planned the view's query; on the tests' warehouse
-- a batch of 5,000 new residents took 88 to 95 ms this way (and with the
-- filter's cache-line blocks of the same commit) against 109 to 112 before
-- (BenchmarkEventWriterWrite, three runs each, taking turns, 2026-12-01).
-- Now the writer puts, in the block of the batch's ledger rows, one row per
-- type, city and WIB day of its events that counts no one: the zero
-- resident, sign 0, and the newest event time of that day in last_at. The
-- ledger's projections sum the signs and take the newest time together, so
-- each view reads one table where it read two, and the newest time of a day
-- is written with the counts it goes with. A max is idempotent, so a
-- redelivered batch's rows change nothing.
--
-- The newest times already written are put back from ikd.events by the
-- migration runner right after this file (warehouse.recountNewest), as
-- warehouse.Recount does. Stop the aggregators for the upgrade, as for 007.

DROP VIEW IF EXISTS ikd.latest_daily_mv;

ALTER TABLE ikd.first_seen ADD COLUMN IF NOT EXISTS last_at DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');

ALTER TABLE ikd.first_seen DROP PROJECTION IF EXISTS yearly;

ALTER TABLE ikd.first_seen DROP PROJECTION IF EXISTS monthly;

ALTER TABLE ikd.first_seen DROP PROJECTION IF EXISTS by_day;

ALTER TABLE ikd.first_seen ADD PROJECTION IF NOT EXISTS yearly
(
    SELECT type, year, province_code, city_code, sum(sign), max(last_at)
    GROUP BY type, year, province_code, city_code
);

ALTER TABLE ikd.first_seen ADD PROJECTION IF NOT EXISTS by_day
(
    SELECT type, year, day, province_code, city_code, sum(sign), max(last_at)
    GROUP BY type, year, day, province_code, city_code
);

ALTER TABLE ikd.first_seen ADD PROJECTION IF NOT EXISTS monthly
(
    SELECT type, year, province_code, city_code, toStartOfMonth(day), sum(sign), max(last_at)
    GROUP BY type, year, province_code, city_code, toStartOfMonth(day)
);

ALTER TABLE ikd.first_seen MATERIALIZE PROJECTION yearly SETTINGS mutations_sync = 1;

ALTER TABLE ikd.first_seen MATERIALIZE PROJECTION monthly SETTINGS mutations_sync = 1;

ALTER TABLE ikd.first_seen MATERIALIZE PROJECTION by_day SETTINGS mutations_sync = 1;

-- The views of 011 (running) and 012 (as of a date), their newest
-- activation read with the counts. Columns and meaning are those of 010.

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
    -- projection, the days of its month up to it from its by_day one.
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
        SELECT type, year, city_code, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
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
    -- from the ledger's yearly projection.
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
        maxIf(last_at, type = 'activation') AS last_activation_at
    FROM
    (
        SELECT type, year, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE toStartOfMonth(day) < toStartOfMonth(as_of_day)
        GROUP BY type, year
        SETTINGS use_primary_key = 0
        UNION ALL
        SELECT type, year, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
        WHERE day >= toStartOfMonth(as_of_day) AND day <= as_of_day
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
        maxIf(last_at, type = 'activation') AS last_activation_at
    FROM
    (
        SELECT type, year, sum(sign) AS n, max(last_at) AS last_at
        FROM ikd.first_seen
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

DROP TABLE IF EXISTS ikd.latest_daily;
