"""The results topic: the rows of every closed window or revision, one JSON record each.

Stage 2 publishes here; the store writer (and anyone else) consumes it. A record is keyed by
the window (model, version, start), so a window's revisions stay in order on one partition;
every row carries its ``revision``: writing a record twice changes nothing in the store
(ReplacingMergeTree on ``revision``).
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


def _docs(results: WindowResults) -> Iterator[bytes]:
    for drift in results.drift:
        yield orjson.dumps(_infinities_out({"kind": "drift", **drift.as_dict()}))
    for metric in results.metrics:
        yield orjson.dumps(_infinities_out({"kind": "metric", **metric.as_dict()}))


def _row(doc: dict[str, Any], drift: list[DriftRow], metrics: list[MetricRow]) -> None:
    doc = _infinities_in(doc)
    if doc.pop("kind") == "drift":
        drift.append(DriftRow(**doc))
    else:
        metrics.append(MetricRow(**doc))


def encode_results(results: WindowResults) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) records for the results topic: one per window (or revision), its rows
    as a JSON list, keyed by the window's model, version and start.

    One record per row cost a producer send per row (tens of thousands per backlog, the
    largest part of stage 2's time); one per window costs one."""
    rows: list[DriftRow | MetricRow] = [*results.drift, *results.metrics]
    if not rows:
        return
    first = rows[0]
    key = orjson.dumps([first.model_id, first.model_version, first.window_start])
    yield key, encode_window(results)


def decode_results(values: Iterable[bytes]) -> WindowResults:
    """Rows back from record values (the inverse of :func:`encode_results`; a value that
    is a single row, as earlier versions wrote, is read too)."""
    drift: list[DriftRow] = []
    metrics: list[MetricRow] = []
    for value in values:
        doc = orjson.loads(value)
        for row in doc if isinstance(doc, list) else [doc]:
            _row(row, drift, metrics)
    return WindowResults(tuple(drift), tuple(metrics))


def encode_window(results: WindowResults) -> bytes:
    """One window's (or one revision's) rows as a single record."""
    return b"[" + b",".join(_docs(results)) + b"]"


def decode_window(value: bytes) -> WindowResults:
    return decode_results([value])
