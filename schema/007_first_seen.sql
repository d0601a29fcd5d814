-- Counting each resident once, at ingest (README, "Exactly once"). The
-- ledger holds, per type, year (WIB), city and resident, the day the
-- resident was first seen: the earliest WIB date of their events of that
-- type in that year (a resident's city is their domicile, which the NIK
-- encodes; one whose events name two cities counts in each, as before). Its
-- rows are signed transitions, written by the single active aggregator
-- (warehouse.EventWriter) after the batch's events: +1 on a resident's first
-- day; when an event with an earlier day arrives late, -1 on the old day and
-- +1 on the new one. So a resident's rows in a city add up to +1 on exactly
-- one day, and the projection below sums them into integer counts per city
-- and day, written in the same part as the rows (atomic with them, on a
-- server too).
--
-- resident is the pseudonym's 16 bytes (unhex of its 32 hex digits; MD5 of
-- anything else), so the ledger is about the size of the old sets' hashes.
CREATE TABLE IF NOT EXISTS ikd.first_seen
(
    type          LowCardinality(String),
    year          UInt16,
    resident      FixedString(16),
    province_code LowCardinality(String),
    city_code     LowCardinality(String),
    day           Date,
    sign          Int8,
    PROJECTION daily
    (
        SELECT type, year, province_code, city_code, day, sum(sign)
        GROUP BY type, year, province_code, city_code, day
    )
)
ENGINE = MergeTree
ORDER BY (type, year, resident)
SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 1000;

-- The newest event time per type, city and day, for last_activation_at and
-- the board's "newest counted event": max() is idempotent, so a materialized
-- view from ikd.events keeps it exact under any redelivery, as before.
CREATE TABLE IF NOT EXISTS ikd.latest_daily
(
    type          LowCardinality(String),
    year          UInt16,
    province_code LowCardinality(String),
    city_code     LowCardinality(String),
    day           Date,
    last_at       SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (type, year, province_code, city_code, day)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ikd.latest_daily_mv TO ikd.latest_daily AS
SELECT
    type,
    toYear(occurred_at, 'Asia/Jakarta') AS year,
    province_code,
    city_code,
    toDate(occurred_at, 'Asia/Jakarta') AS day,
    max(occurred_at) AS last_at
FROM ikd.events
GROUP BY type, year, province_code, city_code, day;

-- The events already written, from the old per-day sets (their max is the
-- same; an event also seen by the view just created changes no max).
INSERT INTO ikd.latest_daily
SELECT type, year, province_code, city_code, day, max(last_at)
FROM ikd.residents_daily
GROUP BY type, year, province_code, city_code, day;

-- The ledger of the events already written is filled by warehouse.Recount,
-- which the migration runner calls right after this file (migrate.go), so
-- that an existing warehouse keeps its figures.
