-- One drift verdict per (model version, segment, window, feature); see stream/results.py DriftRow.
-- ReplacingMergeTree(revision): rows with the same ORDER BY key collapse to the highest
-- revision on merge (and at read time with FINAL), so re-delivering a result is harmless.
-- drifted is NULL when no verdict could be given (too few rows): never read NULL as "no drift".
CREATE TABLE IF NOT EXISTS feature_drift
(
    model_id         LowCardinality(String),
    model_version    LowCardinality(String),
    segment          LowCardinality(String),
    window_start     DateTime64(3, 'UTC'),
    window_end       DateTime64(3, 'UTC'),
    feature          String,
    method           LowCardinality(String),
    statistic        Nullable(Float64),
    p_value          Nullable(Float64),
    p_value_adjusted Nullable(Float64),
    threshold        Float64,
    drifted          Nullable(UInt8),
    reference_size   UInt64,
    current_size     UInt64,
    revision         UInt32,
    computed_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model_id, model_version, segment, window_start, feature);
