-- The current revision of every result. FINAL collapses rows with the same key to the one
-- with the highest revision at read time, whether or not the background merge has run yet.
-- Read these views, not the tables, unless you want the revision history.
CREATE VIEW IF NOT EXISTS feature_drift_latest AS
SELECT * FROM feature_drift FINAL;

CREATE VIEW IF NOT EXISTS window_metrics_latest AS
SELECT * FROM window_metrics FINAL;

-- The last state change of every alert (by fingerprint): state = 'firing' means still open.
CREATE VIEW IF NOT EXISTS alerts_current AS
SELECT
    fingerprint,
    argMax(model_id, time)     AS model_id,
    argMax(rule, time)         AS rule,
    argMax(metric, time)       AS metric,
    argMax(feature, time)      AS feature,
    argMax(segment, time)      AS segment,
    argMax(severity, time)     AS severity,
    argMax(state, time)        AS state,
    argMax(value, time)        AS value,
    argMax(threshold, time)    AS threshold,
    argMax(message, time)      AS message,
    max(time)                  AS last_change,
    minIf(time, a.state = 'firing') AS first_fired
FROM alerts AS a FINAL
GROUP BY fingerprint;
