"""A batch of prediction events read once into columns, for every segment's state to take rows.

Stage 1 folds a window's collected events into one state per segment (``all``, and one per
segment value): each event lands in two or three states. Reading the events (features,
prediction, probability, latency, request-id priorities) once per batch, as numpy columns,
and letting each state take its rows by index, costs one pass of Python per event instead
of one per event and segment (:meth:`stream.metrics.window.WindowState.add_batch`).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from stream.metrics.columns import BoolArray, ColumnBatch, IntArray, Rows
from stream.metrics.sampling import FloatArray, U64Array, priorities
from stream.metrics.scorebins import bin_index
from stream.metrics.values import argmax, as_probability, class_key

#: Per event: drift value of the prediction, probability, decision, class, class scores.
ReadPredictions = tuple[list[Any], list[float | None], list[bool | None], list[str | None],
                        list[Mapping[str, Any] | None]]


#: Label values as decoded events hold them (tested before the slower ABC check).
_SCALARS: Final = frozenset({int, float, str, bool, type(None)})


def read_predictions(events: Sequence[Mapping[str, Any]], task: str,
                     positive: str) -> ReadPredictions:
    """Per event: drift value of the prediction, probability, decision, class, scores."""
    values: list[Any] = []
    probs: list[float | None] = []
    decided: list[bool | None] = []
    keys: list[str | None] = []
    scores: list[Mapping[str, Any] | None] = []
    for e in events:
        pred = e.get("prediction")
        if task == "regression":
            values.append(pred)
            continue
        if task == "binary":
            prob = e.get("probability")
            # The usual event (an int class, a float probability) without the calls.
            p = prob if type(prob) is float and 0.0 <= prob <= 1.0 else as_probability(prob)
            if type(pred) is int:
                key: str | None = str(pred)
            else:
                if p is None and isinstance(pred, float) and not pred.is_integer():
                    p = as_probability(pred)  # a bare score in "prediction"
                    pred = None
                key = class_key(pred)
            dec = (key == positive) if key is not None else (p >= 0.5 if p is not None else None)
            values.append(p if p is not None else pred)
            probs.append(p)
            decided.append(dec)
            keys.append(key)
            scores.append(None)
        else:
            sc = e.get("scores")
            sc = sc if isinstance(sc, Mapping) and sc else None
            key = class_key(pred)
            if key is None and sc is not None:
                key = argmax(sc)
            values.append(key)
            probs.append(None)
            decided.append(None if key is None else key == positive)
            keys.append(key)
            scores.append(sc)
    return values, probs, decided, keys, scores


@dataclass(slots=True)
class Decisions:
    """A binary model's read predictions as arrays: probability (NaN: none), decision,
    and which rows have each."""

    p: FloatArray
    has_p: BoolArray
    d: BoolArray
    has_d: BoolArray
    bins: IntArray  # the score bin of p (:func:`stream.metrics.scorebins.bin_index`)

    @classmethod
    def of(cls, read: ReadPredictions) -> Decisions:
        _, probs, decided, _, _ = read
        has_p = np.array([x is not None for x in probs], dtype=bool)
        p = np.array([np.nan if x is None else x for x in probs], dtype=np.float64)
        has_d = np.array([x is not None for x in decided], dtype=bool)
        d = np.array([bool(x) for x in decided], dtype=bool)
        bins = np.zeros(p.size, dtype=np.intp)
        bins[has_p] = bin_index(p[has_p])
        return cls(p, has_p, d, has_d, bins)

    def rows(self, rows: Rows) -> Decisions:
        if rows is None:
            return self
        return Decisions(self.p[rows], self.has_p[rows], self.d[rows], self.has_d[rows],
                         self.bins[rows])


def take(values: list[Any], rows: Rows) -> list[Any]:
    """The rows' items of a per-event list (all of it when ``rows`` is None)."""
    return values if rows is None else [values[i] for i in rows]


@dataclass(slots=True)
class PredictionBatch:
    """Prediction events as columns. ``names``: every feature name some event has, sorted;
    ``has_name``: per name, which events have it (None: all do)."""

    n: int
    seed: int
    prio: U64Array
    feats: list[Mapping[str, Any]]
    names: list[str]
    has_name: dict[str, BoolArray | None]
    features: dict[str, ColumnBatch]
    prediction: ColumnBatch
    read: ReadPredictions
    latency: ColumnBatch
    decisions: Decisions | None  # binary models only

    @classmethod
    def of(cls, events: Sequence[Mapping[str, Any]], task: str, positive: str, seed: int = 0,
           offset: int = 0) -> PredictionBatch:
        """Read ``events``; ``offset`` (rows the state saw before) keys the priorities of
        events without a request id (:func:`stream.metrics.sampling.priorities`)."""
        prio = priorities([e.get("request_id") for e in events], seed, offset=offset)
        feats = [f if type(f := e.get("features")) is dict or isinstance(f, Mapping) else {}
                 for e in events]  # (the type test spares the ABC check: 0.06 us, not 0.23)
        names = sorted(set().union(*(f.keys() for f in feats)))
        columns, has_name = _transpose(feats, names)
        read = read_predictions(events, task, positive)
        return cls(len(events), seed, prio, feats, names, has_name,
                   dict(zip(names, map(ColumnBatch, columns), strict=True)),
                   ColumnBatch(read[0]), read,
                   ColumnBatch([e.get("latency_ms") for e in events]),
                   Decisions.of(read) if task == "binary" else None)

    def names_in(self, rows: Rows) -> list[str]:
        """The feature names some of the rows have."""
        if rows is None:
            return self.names
        return [name for name in self.names
                if (mask := self.has_name[name]) is None or mask[rows].any()]

    def non_null(self, name: str, rows: Rows) -> int:
        """Rows whose value of ``name`` is not null (counted when a column is dropped)."""
        feats = take(self.feats, rows)
        return sum(1 for f in feats if f.get(name) is not None)


@dataclass(slots=True)
class LabelledBatch:
    """(prediction event, label) pairs read once: the predictions as
    :class:`PredictionBatch` reads them, each label's class key (None: not a valid class),
    and the request ids' priorities (for the labelled row sample)."""

    n: int
    seed: int
    events: list[Mapping[str, Any]]
    labels: list[Any]
    keys: list[str | None]
    valid: BoolArray
    read: ReadPredictions | None  # classification only
    decisions: Decisions | None  # binary only
    y: BoolArray  # binary: the label is the positive class
    ids: list[Any]
    prio: U64Array
    has_id: BoolArray

    @classmethod
    def of(cls, pairs: Sequence[tuple[Mapping[str, Any], Any]], task: str, positive: str,
           seed: int = 0) -> LabelledBatch:
        events = [p for p, _ in pairs]
        labels = [lab if type(lab) in _SCALARS else lab.get("label") if isinstance(lab, Mapping)
                  else lab for _, lab in pairs]
        ids = [e.get("request_id") for e in events]
        has_id = np.array([i is not None and i != "" for i in ids], dtype=bool)
        if task == "regression":
            keys: list[str | None] = []
            read = None
        else:
            keys = [class_key(lab) for lab in labels]
            read = read_predictions(events, task, positive)
        return cls(len(pairs), seed, events, labels, keys,
                   np.array([k is not None for k in keys], dtype=bool), read,
                   Decisions.of(read) if read is not None and task == "binary" else None,
                   np.array([k == positive for k in keys], dtype=bool), ids,
                   priorities(ids, seed), has_id)

    def priorities(self, rows: IntArray, offset: int) -> U64Array:
        """The rows' priorities, as :func:`priorities` of their ids at ``offset``."""
        if self.has_id[rows].all():
            return self.prio[rows]
        return priorities([self.ids[i] for i in rows], self.seed, offset=offset)


def _transpose(feats: list[Mapping[str, Any]],
               names: list[str]) -> tuple[list[Sequence[Any]], dict[str, BoolArray | None]]:
    """One value list per name (None when missing), and which events have each name.

    One ``itemgetter`` call per event when every event has every name (the common case),
    instead of one ``dict.get`` per event and name."""
    if not names:
        return [], {}
    try:
        rows = list(map(operator.itemgetter(*names), feats))
    except KeyError:
        has = {name: np.array([name in f for f in feats], dtype=bool) for name in names}
        return [[f.get(name) for f in feats] for name in names], dict(has)
    every: dict[str, BoolArray | None] = dict.fromkeys(names)
    if len(names) == 1:
        return [rows], every
    return list(zip(*rows, strict=True)), every
