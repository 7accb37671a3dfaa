-- Why a metric row's value is NULL, when the producer knows (stream/results.py MetricRow
-- reason): e.g. a fairness gap that could not be computed says "groups_below_min_size".
-- '' for every row with a value, and for rows written before this migration.
ALTER TABLE window_metrics
    ADD COLUMN IF NOT EXISTS reason LowCardinality(String) DEFAULT '';

-- The view's SELECT * was expanded when 0004 created it: recreate it so it has the column.
CREATE OR REPLACE VIEW window_metrics_latest AS
SELECT * FROM window_metrics FINAL;
