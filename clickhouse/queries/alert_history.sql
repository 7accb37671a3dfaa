-- Alert state changes (firing, resolved) of the last N days, newest first.
-- Parameters: days. For what is open right now: SELECT * FROM alerts_current WHERE state = 'firing'.
SELECT
    time,
    model_id,
    rule,
    severity,
    state,
    metric,
    feature,
    segment,
    value,
    threshold,
    message
FROM alerts FINAL
WHERE time >= now64(3, 'UTC') - toIntervalDay({days:UInt32})
ORDER BY time DESC, id
LIMIT 1000
