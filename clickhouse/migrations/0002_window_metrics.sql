-- One figure per (model version, segment, window, family, metric, feature), long format;
-- see stream/results.py MetricRow. feature is '' for model-level metrics.
CREATE TABLE IF NOT EXISTS window_metrics
(
    model_id       LowCardinality(String),
    model_version  LowCardinality(String),
    segment        LowCardinality(String),
    window_start   DateTime64(3, 'UTC'),
    window_end     DateTime64(3, 'UTC'),
    family         LowCardinality(String),
    metric         LowCardinality(String),
    feature        String,
    value          Nullable(Float64),
    sample_size    UInt64,
    labelled_count UInt64,
    coverage       Nullable(Float64),
    revision       UInt32,
    computed_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model_id, model_version, segment, window_start, family, metric, feature);
