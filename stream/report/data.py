"""What the report shows, read from the store with parameterised queries (never formatted SQL).

Every query filters on ``model_id`` and the window start range; the views ``*_latest`` give
the current revision of each row. The queries live here rather than in
``clickhouse/queries/`` because those are the documented ad-hoc ones (docs/store.md), with a
fixed "last N days" range; these take the report's ``--from/--to``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from stream.store import Store

_RANGE: Final = ("model_id = {model_id:String} "
                 "AND window_start >= fromUnixTimestamp64Milli({start:Int64}, 'UTC') "
                 "AND window_start < fromUnixTimestamp64Milli({end:Int64}, 'UTC')")

DRIFT_SQL: Final = f"""
SELECT feature, model_version, toUnixTimestamp64Milli(window_start) AS ws, method,
       statistic, p_value_adjusted, threshold, drifted, current_size
FROM feature_drift_latest
WHERE {_RANGE} AND segment = 'all'
ORDER BY feature, model_version, window_start
"""

PERFORMANCE_SQL: Final = f"""
SELECT model_version, toUnixTimestamp64Milli(window_start) AS ws, family, metric, value,
       coverage, labelled_count, sample_size
FROM window_metrics_latest
WHERE {_RANGE} AND segment = 'all' AND feature = ''
  AND family IN ('performance', 'estimate')
ORDER BY model_version, window_start
"""

SEGMENTS_SQL: Final = f"""
SELECT segment,
       countIf(drifted = 1)         AS drifted_verdicts,
       countIf(drifted IS NOT NULL) AS verdicts,
       drifted_verdicts / verdicts  AS drift_share,
       countIf(drifted IS NULL)     AS no_verdict,
       uniqExactIf(feature, drifted = 1) AS drifted_features
FROM feature_drift_latest
WHERE {_RANGE} AND segment != 'all'
GROUP BY segment
HAVING verdicts > 0
ORDER BY drift_share DESC, drifted_verdicts DESC, segment
"""

FAIRNESS_SQL: Final = f"""
SELECT model_version, toUnixTimestamp64Milli(window_start) AS ws, metric, feature, value,
       sample_size
FROM window_metrics_latest
WHERE {_RANGE} AND family = 'fairness'
ORDER BY metric, feature, window_start
"""

#: The latest window's shares on the reference's bins (stream.metrics.distribution), of the
#: latest window in the range that has them.
DISTRIBUTION_SQL: Final = f"""
SELECT model_version, toUnixTimestamp64Milli(window_start) AS ws, feature, metric, value,
       sample_size
FROM window_metrics_latest
WHERE {_RANGE} AND segment = 'all' AND family = 'distribution'
  AND window_start = (SELECT max(window_start) FROM window_metrics_latest
                      WHERE {_RANGE} AND segment = 'all' AND family = 'distribution')
ORDER BY model_version, feature, metric
"""

ALERTS_SQL: Final = """
SELECT toUnixTimestamp64Milli(time) AS t, rule, severity, state, metric, feature, segment,
       value, threshold, message
FROM alerts FINAL
WHERE model_id = {model_id:String}
  AND window_start >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
  AND window_start < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
ORDER BY time, id
"""


def _dicts(store: Store, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = store.query(sql, params)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


@dataclass(slots=True)
class ReportData:
    """The rows of one model's report, each a dict named by the query's columns."""

    model_id: str
    start: int
    end: int
    drift: list[dict[str, Any]] = field(default_factory=list)
    performance: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    fairness: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    distribution: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.drift or self.performance or self.fairness or self.alerts)


def load_report_data(store: Store, model_id: str, start: int, end: int) -> ReportData:
    """Every section's rows for ``model_id``, windows starting in ``[start, end)`` (epoch ms)."""
    params = {"model_id": model_id, "start": start, "end": end}
    data = ReportData(model_id, start, end)
    data.drift = _dicts(store, DRIFT_SQL, params)
    data.performance = _dicts(store, PERFORMANCE_SQL, params)
    data.segments = _dicts(store, SEGMENTS_SQL, params)
    data.fairness = _dicts(store, FAIRNESS_SQL, params)
    data.alerts = _dicts(store, ALERTS_SQL, params)
    data.distribution = _dicts(store, DISTRIBUTION_SQL, params)
    for row in data.drift:
        if row["drifted"] is not None:
            row["drifted"] = bool(row["drifted"])
    return data
