-- Latest drift verdict per feature of one model, whole traffic (segment 'all').
-- Parameters: model_id. drifted is NULL when no verdict was possible (too few rows).
-- tidewatch sql "$(cat clickhouse/queries/latest_drift_per_feature.sql)" --param model_id=churn
SELECT
    feature,
    model_version,
    window_start,
    method,
    statistic,
    p_value_adjusted,
    threshold,
    drifted,
    current_size
FROM feature_drift_latest
WHERE model_id = {model_id:String} AND segment = 'all'
ORDER BY feature, model_version, window_start DESC
LIMIT 1 BY feature, model_version
