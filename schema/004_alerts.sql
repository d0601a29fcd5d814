-- Every transition of an alert, written by ikd-alerter: one row when an alert
-- fires (or escalates to a higher severity) and one when it resolves. The
-- current state of a (rule, region_code, year) is its latest row:
--   SELECT rule, region_code, year, argMax(state, at) FROM ikd.alerts GROUP BY ALL
-- region_code is the city ('17.71') or province ('17') code; city_code is ''
-- for a province-level alert. alert_id is shared by the rows of one episode.
CREATE TABLE IF NOT EXISTS ikd.alerts
(
    alert_id       String,
    rule           LowCardinality(String),
    severity       LowCardinality(String),
    state          LowCardinality(String),
    year           UInt16,
    region_code    String,
    province_code  LowCardinality(String),
    city_code      String,
    region_name    String,
    attainment_pct Float64,
    expected_pct   Float64,
    target         UInt64,
    activated      UInt64,
    message        String,
    at             DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (year, rule, region_code, at, state, severity);
