-- Times as the registry reads them: last_activation_at in WIB
-- (Nullable(DateTime64(3, 'Asia/Jakarta'))), NULL for a region without any
-- activation in the year instead of 1970-01-01. The views are those of
-- 003_attainment.sql otherwise.
--
-- ikd.alerts keeps its last 10,000 insert blocks' tokens, so that the
-- alerters, each inserting a transition under its Nats-Msg-Id as
-- insert_deduplication_token, record it once however many of them run.
ALTER TABLE ikd.alerts MODIFY SETTING non_replicated_deduplication_window = 10000;

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
        SELECT year FROM ikd.residents_daily
        UNION ALL SELECT year FROM ikd.targets
        UNION ALL SELECT toUInt16(as_of_year)
    )
    WHERE year <= as_of_year
) AS y
LEFT JOIN (SELECT * FROM ikd.provinces FINAL) AS p ON p.code = c.province_code
LEFT JOIN
(
    SELECT
        year,
        city_code,
        uniqExactMergeIf(residents, type = 'activation') AS activated,
        uniqExactMergeIf(residents, type = 'enrolment') AS enrolled,
        maxIf(last_at, type = 'activation') AS last_activation_at
    FROM ikd.residents_daily
    WHERE day <= as_of_day
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
