-- Running counts. A state holds the set of residents seen, not a number of
-- events, so an event delivered, batched or inserted twice changes nothing:
-- every aggregate here is idempotent by construction.
CREATE TABLE IF NOT EXISTS ikd.residents_daily
(
    type          LowCardinality(String),
    year          UInt16,
    province_code LowCardinality(String),
    city_code     LowCardinality(String),
    day           Date,
    residents     AggregateFunction(uniqExact, String),
    last_at       SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (type, year, province_code, city_code, day)
SETTINGS non_replicated_deduplication_window = 1000;

-- Days and years are counted in Western Indonesia Time (WIB, Asia/Jakarta).
CREATE MATERIALIZED VIEW IF NOT EXISTS ikd.residents_daily_mv TO ikd.residents_daily AS
SELECT
    type,
    toYear(occurred_at, 'Asia/Jakarta') AS year,
    province_code,
    city_code,
    toDate(occurred_at, 'Asia/Jakarta') AS day,
    uniqExactState(resident) AS residents,
    max(occurred_at) AS last_at
FROM ikd.events
GROUP BY type, year, province_code, city_code, day;
