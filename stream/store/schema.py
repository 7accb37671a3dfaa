"""Which record goes to which table, column by column: the one place both writers read.

Rows leave here as plain tuples in table column order, with times as integer epoch
milliseconds (what clickhouse-connect writes into ``DateTime64(3)``) and ``drifted`` as
``0/1/None``. The embedded writer encodes the same tuples as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any, Final

import orjson

from stream.results import AlertRecord, DriftRow, MetricRow

Row = tuple[Any, ...]

DRIFT_TABLE: Final = "feature_drift"
METRICS_TABLE: Final = "window_metrics"
ALERTS_TABLE: Final = "alerts"

DRIFT_COLUMNS: Final = (
    "model_id", "model_version", "segment", "window_start", "window_end", "feature", "method",
    "statistic", "p_value", "p_value_adjusted", "threshold", "drifted", "reference_size",
    "current_size", "revision", "computed_at",
)  # fmt: skip
METRIC_COLUMNS: Final = (
    "model_id", "model_version", "segment", "window_start", "window_end", "family", "metric",
    "feature", "value", "sample_size", "labelled_count", "coverage", "revision", "computed_at",
    "reason",
)  # fmt: skip
ALERT_COLUMNS: Final = (
    "id", "fingerprint", "model_id", "rule", "metric", "feature", "segment", "window_start",
    "window_end", "value", "threshold", "severity", "state", "time", "message",
    "schema_version", "model_version", "op", "contributors", "detected_at",
)  # fmt: skip

COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    DRIFT_TABLE: DRIFT_COLUMNS,
    METRICS_TABLE: METRIC_COLUMNS,
    ALERTS_TABLE: ALERT_COLUMNS,
}
#: Columns holding epoch milliseconds in Python and ``DateTime64(3, 'UTC')`` in ClickHouse.
TIME_COLUMNS: Final = frozenset({"window_start", "window_end", "computed_at", "time",
                                 "detected_at"})

_drift_get = attrgetter(*DRIFT_COLUMNS)
_metric_get = attrgetter(*METRIC_COLUMNS)
_alert_get = attrgetter(*ALERT_COLUMNS)
_DRIFTED = DRIFT_COLUMNS.index("drifted")


def drift_rows(rows: Iterable[DriftRow]) -> list[Row]:
    out: list[Row] = []
    for row in rows:
        values = list(_drift_get(row))
        drifted = values[_DRIFTED]
        values[_DRIFTED] = None if drifted is None else int(drifted)
        out.append(tuple(values))
    return out


def metric_rows(rows: Iterable[MetricRow]) -> list[Row]:
    return [tuple(_metric_get(row)) for row in rows]


_CONTRIBUTORS = ALERT_COLUMNS.index("contributors")


def alert_rows(alerts: Iterable[AlertRecord]) -> list[Row]:
    """Alert tuples; ``contributors`` as a JSON array of ``{name, value, detail}``."""
    out: list[Row] = []
    for alert in alerts:
        values = list(_alert_get(alert))
        values[_CONTRIBUTORS] = orjson.dumps(
            [{"name": c.name, "value": c.value, "detail": c.detail}
             for c in alert.contributors]).decode()
        out.append(tuple(values))
    return out
