-- Segments of one model ranked by the share of drifted feature verdicts over the last 7 days.
-- Windows without a verdict are counted apart, never as "no drift". Parameters: model_id.
SELECT
    segment,
    countIf(drifted = 1)           AS drifted_verdicts,
    countIf(drifted IS NOT NULL)   AS verdicts,
    round(drifted_verdicts / verdicts, 4) AS drift_share,
    countIf(drifted IS NULL)       AS no_verdict,
    uniqExactIf(feature, drifted = 1) AS drifted_features
FROM feature_drift_latest
WHERE model_id = {model_id:String} AND window_start >= now64(3, 'UTC') - INTERVAL 7 DAY
GROUP BY segment
HAVING verdicts > 0
ORDER BY drift_share DESC, drifted_verdicts DESC, segment
