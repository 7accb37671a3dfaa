"""The results topic: every row of every closed window or revision, as a JSON record.

Stage 2 publishes here; the store writer (and anyone else) consumes it. A record is keyed by
the row's identity (model, version, segment, window, kind, metric/feature) so that the same
row always lands on the same partition, and carries its ``revision``: writing a record twice
changes nothing in the store (ReplacingMergeTree on ``revision``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from stream.results import DriftRow, MetricRow, WindowResults

_FLOATS = ("statistic", "p_value", "p_value_adjusted", "threshold", "value", "coverage")


def _infinities_out(doc: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity (orjson writes null): carry +-inf as strings, e.g. a chi-square
    statistic for a category the reference never saw."""
    for name in _FLOATS:
        value = doc.get(name)
        if isinstance(value, float) and math.isinf(value):
            doc[name] = "inf" if value > 0 else "-inf"
    return doc


def _infinities_in(doc: dict[str, Any]) -> dict[str, Any]:
    for name in _FLOATS:
        if isinstance(doc.get(name), str):
            doc[name] = float(doc[name])
    return doc


def encode_results(results: WindowResults) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) records for the results topic."""
    for drift in results.drift:
        doc: dict[str, Any] = _infinities_out({"kind": "drift", **drift.as_dict()})
        key = [drift.model_id, drift.model_version, drift.segment, drift.window_start, "drift",
               drift.feature]
        yield orjson.dumps(key), orjson.dumps(doc)
    for metric in results.metrics:
        doc = _infinities_out({"kind": "metric", **metric.as_dict()})
        key = [metric.model_id, metric.model_version, metric.segment, metric.window_start,
               metric.family, metric.metric, metric.feature]
        yield orjson.dumps(key), orjson.dumps(doc)


def decode_results(values: Iterable[bytes]) -> WindowResults:
    """Rows back from record values (the inverse of :func:`encode_results`)."""
    drift: list[DriftRow] = []
    metrics: list[MetricRow] = []
    for value in values:
        doc = _infinities_in(orjson.loads(value))
        kind = doc.pop("kind")
        if kind == "drift":
            drift.append(DriftRow(**doc))
        else:
            metrics.append(MetricRow(**doc))
    return WindowResults(tuple(drift), tuple(metrics))


def encode_window(results: WindowResults) -> bytes:
    """One window's (or one revision's) rows as a single record, for the alert evaluator,
    which needs a window's rows together (the results topic spreads them by row)."""
    return b"[" + b",".join(value for _, value in encode_results(results)) + b"]"


def decode_window(value: bytes) -> WindowResults:
    return decode_results(orjson.dumps(doc) for doc in orjson.loads(value))
