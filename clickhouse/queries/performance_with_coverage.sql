-- Performance over time for one model, with the share of predictions labelled so far
-- (coverage): a low coverage means the figure may still move as labels arrive.
-- Parameters: model_id, metric (e.g. accuracy, f1, mae).
SELECT
    window_start,
    model_version,
    family,
    value,
    coverage,
    labelled_count,
    sample_size,
    revision
FROM window_metrics_latest
WHERE model_id = {model_id:String}
  AND metric = {metric:String}
  AND segment = 'all'
  AND feature = ''
  AND family IN ('performance', 'estimate')
ORDER BY window_start, model_version, family
