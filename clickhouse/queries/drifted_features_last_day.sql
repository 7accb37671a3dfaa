-- Features that drifted in at least one window that ended in the last 24 hours, all models.
SELECT
    model_id,
    model_version,
    segment,
    feature,
    count()          AS drifted_windows,
    max(window_end)  AS last_drifted_window_end,
    max(statistic)   AS max_statistic
FROM feature_drift_latest
WHERE drifted = 1 AND window_end > now64(3, 'UTC') - INTERVAL 1 DAY
GROUP BY model_id, model_version, segment, feature
ORDER BY drifted_windows DESC, model_id, model_version, segment, feature
