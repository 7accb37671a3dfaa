-- Performance over time for one model, with the share of predictions labelled so far
-- (coverage): a low coverage means the figure may still move as labels arrive. Beside it,
-- the label-free estimate (expected_<metric>), known from the window's close on.
-- Parameters: model_id, metric (e.g. accuracy, f1, mae).
SELECT
    window_start,
    model_version,
    family,
    metric,
    value,
    coverage,
    labelled_count,
    sample_size,
    revision
FROM window_metrics_latest
WHERE model_id = {model_id:String}
  AND metric IN ({metric:String}, concat('expected_', {metric:String}))
  AND segment = 'all'
  AND feature = ''
  AND family IN ('performance', 'estimate')
ORDER BY window_start, model_version, family
