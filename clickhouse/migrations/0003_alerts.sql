-- Alert history: one row per state change (firing, resolved); see stream/results.py AlertRecord.
-- id identifies a state change, so publishing the same change twice leaves one row.
CREATE TABLE IF NOT EXISTS alerts
(
    id             String,
    fingerprint    String,
    model_id       LowCardinality(String),
    rule           LowCardinality(String),
    metric         LowCardinality(String),
    feature        Nullable(String),
    segment        Nullable(String),
    window_start   DateTime64(3, 'UTC'),
    window_end     DateTime64(3, 'UTC'),
    value          Nullable(Float64),
    threshold      Float64,
    severity       LowCardinality(String),
    state          LowCardinality(String),
    time           DateTime64(3, 'UTC'),
    message        String,
    schema_version UInt8
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (model_id, fingerprint, time, id);
