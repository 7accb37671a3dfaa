"""The results topic: the rows of every closed window or revision, one JSON record each.

Stage 2 publishes here; the store writer (and anyone else) consumes it. A record is keyed by
the window (model, version, start), so a window's revisions stay in order on one partition;
every row carries its ``revision``: writing a record twice changes nothing in the store
(ReplacingMergeTree on ``revision``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from stream.results import DRIFT_FIELDS, METRIC_FIELDS, DriftRow, MetricRow, WindowResults

_FLOATS = ("statistic", "p_value", "p_value_adjusted", "threshold", "value", "coverage")
_INFINITIES = (math.inf, -math.inf)
#: Per kind: the record's keys, the row's values in that order, where floats may be.
_LAYOUT: dict[type, tuple[tuple[str, ...], Any, tuple[int, ...]]] = {
    cls: (("kind", *names), operator.attrgetter(*names),
          tuple(1 + names.index(f) for f in _FLOATS if f in names))
    for cls, names in ((DriftRow, DRIFT_FIELDS), (MetricRow, METRIC_FIELDS))}
_KIND = {DriftRow: "drift", MetricRow: "metric"}


def _doc(row: DriftRow | MetricRow) -> dict[str, Any]:
    """A row as its record: ``{"kind": ..., field: value, ...}``. JSON has no infinity
    (orjson writes null): +-inf are carried as strings, e.g. a chi-square statistic for a
    category the reference never saw."""
    keys, values, floats = _LAYOUT[type(row)]
    items = [_KIND[type(row)], *values(row)]
    for i in floats:
        if items[i] in _INFINITIES:
            items[i] = "inf" if items[i] > 0 else "-inf"
    return dict(zip(keys, items, strict=True))


def _row(doc: dict[str, Any], drift: list[DriftRow], metrics: list[MetricRow]) -> None:
    for name in _FLOATS:
        if isinstance(doc.get(name), str):
            doc[name] = float(doc[name])
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
    """One window's (or one revision's) rows as a single record (one ``orjson.dumps``;
    a call per row, and ``as_dict``'s attribute lookups by name, were 8 us a row)."""
    return orjson.dumps([_doc(row) for rows in (results.drift, results.metrics)
                         for row in rows])


def decode_window(value: bytes) -> WindowResults:
    return decode_results([value])
