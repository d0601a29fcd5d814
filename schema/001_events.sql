-- The raw events, exactly as the aggregator accepted them, and the reference
-- data that the views list every region from.
CREATE DATABASE IF NOT EXISTS ikd;

-- One row per event after merges: a redelivered or republished event carries
-- the same event_id and collapses into one row. Aggregates never count rows of
-- this table, so the merge timing cannot change a figure.
CREATE TABLE IF NOT EXISTS ikd.events
(
    event_id      String,
    type          LowCardinality(String),
    resident      String CODEC(ZSTD(1)),
    province_code LowCardinality(String),
    city_code     LowCardinality(String),
    district_code LowCardinality(String),
    office_id     LowCardinality(String),
    channel       LowCardinality(String),
    occurred_at   DateTime64(3, 'UTC'),
    stream_seq    UInt64,
    written_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYear(occurred_at, 'Asia/Jakarta')
ORDER BY (type, province_code, city_code, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Reloaded by the programs when the shipped reference data differs; replacing
-- by code, so two programs loading at once leave one row per region.
CREATE TABLE IF NOT EXISTS ikd.provinces
(
    code String,
    name String
)
ENGINE = ReplacingMergeTree ORDER BY code;

CREATE TABLE IF NOT EXISTS ikd.cities
(
    code          String,
    province_code String,
    name          String
)
ENGINE = ReplacingMergeTree ORDER BY code;

-- Filled by admins with a plain insert; the latest row per (year, region_code)
-- wins. region_code: '' national, '18' province, '18.71' city.
CREATE TABLE IF NOT EXISTS ikd.targets
(
    year              UInt16,
    region_code       String,
    kind              Enum8('absolute' = 1, 'percent_of_recorded' = 2),
    value             Float64,
    recorded_baseline UInt64 DEFAULT 0,
    updated_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (year, region_code);
