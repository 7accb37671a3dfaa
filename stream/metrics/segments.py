"""Segments: which ``key=value`` slices an event belongs to, with a cap on distinct values.

Two steps keep memory bounded and make the final result independent of partitioning:

1. Stage 1 (per partition and window), :class:`SegmentRouter` admits the first
   ``local_cap`` distinct values of each key it sees; later new values go to
   ``"key=other"``. This is a hard memory bound (``local_cap + 2`` states per key) against a
   flood of new values, and deterministic for a given event order.
2. Stage 2 (per model and window, after merging the partials of all partitions),
   :func:`cap_segments` keeps, per key, the ``cap`` values with the most predictions (ties
   by segment string) and merges all other values, and any stage-1 ``other``, into
   ``"key=other"``.

While no partition sees more than ``local_cap`` distinct values of a key in a window,
step 1 folds nothing, the merged per-value states equal the one-pass states, and step 2
is a function of those states only: the segments and their numbers are then identical for
any partitioning and event order. Use ``local_cap`` a few times ``segment_cap`` (e.g.
``4 * settings.segment_cap``). Beyond it, the total in ``key=other`` is still exact, but
which values were folded depends on arrival order.

A missing or null segment value puts the event in no segment of that key (only in "all");
values are read from ``event["segments"][key]``, else ``event["features"][key]``. A value
literally equal to ``"other"`` shares the folded bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from stream.errors import MetricsError
from stream.metrics.batch import LabelledBatch, PredictionBatch
from stream.metrics.columns import IntArray
from stream.metrics.values import class_key
from stream.metrics.window import WindowState
from stream.results import ALL_SEGMENT

OTHER_VALUE: Final = "other"


def segment_value(event: Mapping[str, Any], key: str) -> str | None:
    """The event's value for a segment key, normalised like class labels (``True -> "true"``)."""
    return class_key(_raw_value(event, key))


def _raw_value(event: Mapping[str, Any], key: str) -> Any:
    """``event["segments"][key]``, else ``event["features"][key]``, else None (decoded
    events hold dicts: the ``type`` test spares the slower ABC check per event)."""
    segs = event.get("segments")
    value = segs.get(key) if type(segs) is dict or isinstance(segs, Mapping) else None
    if value is None:
        feats = event.get("features")
        value = feats.get(key) if type(feats) is dict or isinstance(feats, Mapping) else None
    return value


def segment_name(key: str, value: str) -> str:
    return f"{key}={value}"


def split_segment(segment: str) -> tuple[str, str] | None:
    """``"country=DE" -> ("country", "DE")``; ``"all" -> None``."""
    if segment == ALL_SEGMENT or "=" not in segment:
        return None
    key, value = segment.split("=", 1)
    return key, value


class SegmentRouter:
    """Per-partition, per-window admission of segment values (first ``local_cap`` seen)."""

    def __init__(self, keys: Sequence[str], local_cap: int) -> None:
        if local_cap < 1:
            raise MetricsError("local_cap must be >= 1")
        self.keys = tuple(keys)
        self.local_cap = int(local_cap)
        self.admitted: dict[str, list[str]] = {k: [] for k in self.keys}
        self._sets: dict[str, set[str]] = {k: set() for k in self.keys}

    def route(self, event: Mapping[str, Any]) -> list[str]:
        """Segments of one event: always ``"all"``, then one per key with a value."""
        out = [ALL_SEGMENT]
        for key in self.keys:
            value = segment_value(event, key)
            if value is not None:
                out.append(self._admit(key, value))
        return out

    def _admit(self, key: str, value: str) -> str:
        """The segment of ``key``'s (normalised) ``value``: its own while fewer than
        ``local_cap`` values are admitted (or it is one of them), else ``key=other``.
        Final: an admitted value stays admitted, and once the cap is reached no other is."""
        seen = self._sets[key]
        if value not in seen and len(seen) < self.local_cap and value != OTHER_VALUE:
            seen.add(value)
            self.admitted[key].append(value)
        return segment_name(key, value if value in seen else OTHER_VALUE)

    def group(self, events: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
        """Events of a batch by segment (an event appears once per segment it belongs to)."""
        out: dict[str, list[Mapping[str, Any]]] = {}
        for event in events:
            for seg in self.route(event):
                out.setdefault(seg, []).append(event)
        return out

    def rows(self, events: Sequence[Mapping[str, Any]]) -> dict[str, IntArray]:
        """Positions of a batch's events by segment (an event is in several segments), the
        segments in the order :meth:`route` of each event in turn would meet them.

        Key by key rather than event by event (admission is per key), with each string
        value's segment remembered: the same as routing every event, at a fraction of the
        cost (this ran for every event of every window)."""
        if not events:
            return {}
        found: list[tuple[int, int, str, list[int]]] = []  # first row, key, segment, rows
        for k, key in enumerate(self.keys):
            by_segment: dict[str, list[int]] = {}
            known: dict[str, str] = {}  # str value -> segment (1, 1.0 and True hash alike)
            for i, event in enumerate(events):
                value = _raw_value(event, key)
                seg = known.get(value) if type(value) is str else None
                if seg is None:
                    normal = class_key(value)
                    if normal is None:
                        continue
                    seg = self._admit(key, normal)
                    if type(value) is str:
                        known[value] = seg
                rows = by_segment.get(seg)
                if rows is None:
                    by_segment[seg] = [i]
                else:
                    rows.append(i)
            found.extend((rows[0], k, seg, rows) for seg, rows in by_segment.items())
        found.sort(key=lambda f: (f[0], f[1]))
        out = {ALL_SEGMENT: np.arange(len(events), dtype=np.intp)}
        for _, _, seg, rows in found:
            out[seg] = np.array(rows, dtype=np.intp)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "cap": self.local_cap, "admitted": self.admitted}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SegmentRouter:
        out = cls(d["keys"], d["cap"])
        out.admitted = {k: list(v) for k, v in d["admitted"].items()}
        out._sets = {k: set(v) for k, v in out.admitted.items()}
        return out


def add_by_segment(states: dict[str, WindowState], router: SegmentRouter,
                   events: Sequence[Mapping[str, Any]],
                   new_state: Callable[[], WindowState]) -> None:
    """Add prediction events to the state of each segment they route to (created by
    ``new_state`` when missing), reading them once (:mod:`stream.metrics.batch`): the same
    states as ``add_predictions`` of each segment's events."""
    groups = router.rows(events)
    if not groups:
        return
    for seg in groups:
        if seg not in states:
            states[seg] = new_state()
    first = states[ALL_SEGMENT] if ALL_SEGMENT in groups else states[next(iter(groups))]
    batch = PredictionBatch.of(events, first.task, first.positive_label, first.seed,
                               offset=first.n_predictions)
    for seg, rows in groups.items():
        states[seg].add_batch(batch, None if len(rows) == batch.n else rows)


def add_labelled_by_segment(states: dict[str, WindowState], router: SegmentRouter,
                            pairs: Sequence[tuple[Mapping[str, Any], Any]],
                            new_state: Callable[[], WindowState]) -> None:
    """:func:`add_by_segment` of (prediction, label) pairs: the pairs are read once."""
    groups = router.rows([prediction for prediction, _ in pairs])
    if not groups:
        return
    for seg in groups:
        if seg not in states:
            states[seg] = new_state()
    first = states[next(iter(groups))]
    batch = LabelledBatch.of(pairs, first.task, first.positive_label, first.seed)
    for seg, rows in groups.items():
        states[seg].add_labelled_batch(batch, None if len(rows) == batch.n else rows)


def cap_segments(states: Mapping[str, WindowState], cap: int) -> dict[str, WindowState]:
    """Keep the ``cap`` largest values per key (by predictions, ties by name); fold the rest.

    ``states`` maps segment strings (``"all"``, ``"key=value"``, ``"key=other"``) to merged
    window states. Returns a new mapping; ``"all"`` and unkeyed entries pass through.
    """
    if cap < 1:
        raise MetricsError("cap must be >= 1")
    out: dict[str, WindowState] = {}
    by_key: dict[str, list[tuple[str, WindowState]]] = {}
    for seg, state in states.items():
        parts = split_segment(seg)
        if parts is None:
            out[seg] = state
        else:
            by_key.setdefault(parts[0], []).append((seg, state))
    for key, items in sorted(by_key.items()):
        other_name = segment_name(key, OTHER_VALUE)
        ranked = sorted(
            (it for it in items if it[0] != other_name),
            key=lambda it: (-it[1].n_predictions, it[0]),
        )
        folded = [s for _, s in ranked[cap:]] + [s for n, s in items if n == other_name]
        for seg, state in ranked[:cap]:
            out[seg] = state
        if folded:
            merged = folded[0]
            for s in folded[1:]:
                merged = merged.merge(s)
            out[other_name] = merged
    return out
