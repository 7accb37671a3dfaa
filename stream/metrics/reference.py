"""The reference profile: computed once (from a file or a window state), reused per window.

Per column it keeps the kind, the true count of valid values, min/max, and either a uniform
sample of the numeric values (``sample_capacity``, default 100 000; exact below it) or the
category counts (``category_cap`` distinct, default 10 000). Memory is therefore bounded by
``8 * sample_capacity * numeric columns`` bytes, whatever the size of the reference file,
plus the same per configured segment value with ``segment_sample_capacity`` (default 5 000):
a segment's drift is measured against its own rows (:meth:`ReferenceProfile.for_segment`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from stream.config import MetricsSettings, ModelSettings
from stream.errors import MetricsError
from stream.metrics.calibration import Calibration
from stream.metrics.columns import Kind, column_kind
from stream.metrics.performance import Metrics, performance_metrics
from stream.metrics.sampling import FloatArray, pack, unpack
from stream.metrics.segments import (
    OTHER_VALUE,
    SegmentRouter,
    add_by_segment,
    cap_segments,
    split_segment,
)
from stream.metrics.values import parse_number
from stream.metrics.window import WindowState
from stream.results import ALL_SEGMENT

_RESERVED: Final = frozenset(
    {
        "request_id",
        "model_id",
        "model_version",
        "timestamp",
        "prediction",
        "probability",
        "scores",
        "segments",
        "latency_ms",
        "label",
        "features",
    }
)
#: 2: calibration maps (version 1 profiles still load, uncalibrated); 3: per-segment profiles
#: (version 2 ones still load, with none: every segment is compared with the whole).
_VERSION: Final = 3


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """One reference column. ``count`` is the true number of valid values (not the sample's)."""

    kind: Kind
    count: int
    min: float | None = None
    max: float | None = None
    sample: FloatArray = field(default_factory=lambda: np.empty(0))
    counts: Mapping[str, int] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        return (self.kind, self.count, self.min, self.max, dict(self.counts)) == (
            other.kind,
            other.count,
            other.min,
            other.max,
            dict(other.counts),
        ) and np.array_equal(self.sample, other.sample)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """Reference distribution of every column, plus reference performance when labelled.

    ``segments``: the same distributions over the reference rows of one segment
    (``"country=BR"``), for the configured segment keys. A segment's drift compares the
    window's rows of that segment with the reference's rows of that segment: against the
    whole reference, a segment that always differs from the average would show as drifted
    in every window, which says nothing about change."""

    rows: int
    columns: Mapping[str, ColumnProfile]
    performance: Mapping[str, float | None] = field(default_factory=dict)
    labelled: int = 0
    calibration: Calibration | None = None
    segments: Mapping[str, ReferenceProfile] = field(default_factory=dict)

    def for_segment(self, segment: str, min_rows: int) -> ReferenceProfile:
        """The profile a segment's drift is measured against: the segment's own when the
        reference holds at least ``min_rows`` of its rows, else the whole one (a value the
        reference lacks or barely has, and ``key=other``, whose values vary by window).
        Which one was used shows in each drift row's ``reference_size``."""
        own = self.segments.get(segment)
        return own if own is not None and own.rows >= min_rows else self

    @classmethod
    def from_state(cls, state: WindowState, labelled: bool = True) -> ReferenceProfile:
        """Profile of everything a state received (use a large ``sample_capacity``);
        ``labelled`` False: the distributions only (a segment's profile)."""
        cols: dict[str, ColumnProfile] = {}
        for name, stats in sorted(state.columns.items()):
            kind = column_kind(stats)
            if kind == "numeric":
                cols[name] = ColumnProfile(
                    kind, stats.n_numeric, stats.min, stats.max, np.sort(state.sample.column(name))
                )
            else:
                cols[name] = ColumnProfile(
                    kind, stats.n_category, counts=dict(sorted(stats.categories.counts.items()))
                )
        if not labelled:
            return cls(state.n_predictions, cols)
        perf: Metrics = performance_metrics(state) if state.n_labelled else {}
        calibration = Calibration.fit(state.task, state.labelled_scores)
        return cls(state.n_predictions, cols, perf, state.n_labelled, calibration)

    @classmethod
    def from_window(cls, states: Mapping[str, WindowState]) -> ReferenceProfile:
        """Profile of a window's merged per-segment states (``"all"`` required): the whole
        from ``"all"``, a segment's own from each ``key=value`` (not ``key=other``)."""
        own = {seg: cls.from_state(states[seg], labelled=False)
               for seg in sorted(states) if _has_own_profile(seg)}
        return replace(cls.from_state(states[ALL_SEGMENT]), segments=own)

    @classmethod
    def from_events(
        cls,
        events: Iterable[Mapping[str, Any]],
        model: ModelSettings,
        *,
        segments: Sequence[str] = (),
        segment_cap: int = 20,
        segment_sample_capacity: int = 5_000,
        sample_capacity: int = 100_000,
        category_cap: int = 10_000,
        batch_size: int = 10_000,
    ) -> ReferenceProfile:
        """Profile of prediction events; an event's ``label`` field, when present, is used.

        ``segments``: the segment keys (``metrics.segments``); per key, the ``segment_cap``
        values with the most reference rows get a profile of their own (values read as the
        stream reads them, :mod:`stream.metrics.segments`), its numeric columns a uniform
        sample of ``segment_sample_capacity`` values (exact below it; a window's own
        capacity by default), which bounds a model's profiles to about
        ``8 * segment_sample_capacity * numeric columns * segment values`` bytes more."""

        def new_state(capacity: int) -> WindowState:
            return WindowState(model.task, model.positive_label,
                               sample_capacity=capacity, category_cap=category_cap,
                               max_columns=100_000)

        state = new_state(sample_capacity)
        # The first values seen, a few times the cap: bounded against a key of ids.
        router = SegmentRouter(segments, 4 * segment_cap) if segments else None
        by_segment: dict[str, WindowState] = {ALL_SEGMENT: state}

        def segment_state() -> WindowState:
            return new_state(segment_sample_capacity)

        batch: list[Mapping[str, Any]] = []
        for event in events:
            batch.append(event)
            if len(batch) >= batch_size:
                _add(state, batch, router, by_segment, segment_state)
                batch = []
        _add(state, batch, router, by_segment, segment_state)
        # The values kept as stage 2 keeps a window's: the largest per key, by rows.
        return cls.from_window(cap_segments(by_segment, segment_cap))

    @classmethod
    def from_file(cls, path: str | Path, model: ModelSettings, **kw: Any) -> ReferenceProfile:
        """From JSON Lines (``.jsonl``/``.ndjson``/``.json``) or CSV (``.csv``) prediction events.

        CSV: the reserved columns (``request_id``, ``prediction``, ``probability``, ``label``,
        ``latency_ms``, ...) are read as such, every other column is a feature; a column whose
        non-empty cells all parse as numbers is numeric, an empty cell is a null.
        JSON Lines: events as on the topic; a line without ``features`` is read flat (every
        non-reserved key is a feature).
        """
        p = Path(path)
        try:
            if p.suffix.lower() == ".csv":
                return cls.from_events(_read_csv(p), model, **kw)
            return cls.from_events(_read_jsonl(p), model, **kw)
        except OSError as exc:
            raise MetricsError(f"cannot read reference file {p}: {exc}") from exc

    # ------------------------------------------------------------------ serialisation
    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "v": _VERSION,
            "rows": self.rows,
            "labelled": self.labelled,
            "performance": dict(self.performance),
            "columns": _dump_columns(self.columns, "", arrays),
            "calibration": None if self.calibration is None else self.calibration.to_json(),
            "segments": {seg: {"rows": p.rows,
                               "columns": _dump_columns(p.columns, f"s{j}.", arrays)}
                         for j, (seg, p) in enumerate(sorted(self.segments.items()))},
        }
        return pack(meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        meta, arrays = unpack(data)
        if meta.get("v") not in (1, 2, _VERSION):
            raise MetricsError(f"unsupported reference profile version {meta.get('v')!r}")
        segments = {seg: cls(int(d["rows"]), _load_columns(d["columns"], f"s{j}.", arrays))
                    for j, (seg, d) in enumerate(meta.get("segments", {}).items())}
        cal = meta.get("calibration")
        return cls(int(meta["rows"]), _load_columns(meta["columns"], "", arrays),
                   meta["performance"], int(meta["labelled"]),
                   Calibration.from_json(cal) if cal is not None else None, segments)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceProfile):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]


def segment_options(metrics: MetricsSettings) -> dict[str, Any]:
    """The configured segment keys, cap and sample capacity, as :meth:`ReferenceProfile.
    from_events` and ``from_file`` take them (the worker, the backfill, ``tidewatch
    reference set`` and the demo profile alike)."""
    return {"segments": metrics.segments, "segment_cap": metrics.segment_cap,
            "segment_sample_capacity": metrics.sample_capacity}


def _dump_columns(columns: Mapping[str, ColumnProfile], prefix: str,
                  arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Columns as header entries; numeric samples into ``arrays`` as ``<prefix><i>``."""
    cols: dict[str, Any] = {}
    for i, (name, c) in enumerate(columns.items()):
        cols[name] = [c.kind, c.count, c.min, c.max, dict(c.counts)]
        if c.kind == "numeric":
            arrays[f"{prefix}{i}"] = c.sample
    return cols


def _load_columns(cols: Mapping[str, Any], prefix: str,
                  arrays: Mapping[str, np.ndarray]) -> dict[str, ColumnProfile]:
    out = {}
    for i, (name, (kind, count, lo, hi, counts)) in enumerate(cols.items()):
        sample = arrays.get(f"{prefix}{i}", np.empty(0))
        out[name] = ColumnProfile(kind, int(count), lo, hi, sample, counts)
    return out


def _has_own_profile(segment: str) -> bool:
    """A ``key=value`` segment; not ``"all"`` (the whole) nor ``key=other`` (its values
    change from window to window)."""
    parts = split_segment(segment)
    return parts is not None and parts[1] != OTHER_VALUE


def _add(state: WindowState, batch: list[Mapping[str, Any]], router: SegmentRouter | None,
         by_segment: dict[str, WindowState], new_state: Callable[[], WindowState]) -> None:
    """A batch into the whole state and, with ``router``, the segments' (``by_segment``
    holds the whole state as ``"all"``: the batch is read once for all of them)."""
    if not batch:
        return
    if router is None:
        state.add_predictions(batch)
    else:
        add_by_segment(by_segment, router, batch, new_state)
    labelled = [(e, e["label"]) for e in batch if e.get("label") is not None]
    state.add_labelled(labelled)


def _normalise(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(obj.get("features"), Mapping):
        return obj
    out = {k: v for k, v in obj.items() if k in _RESERVED}
    out["features"] = {k: v for k, v in obj.items() if k not in _RESERVED}
    return out


def _read_jsonl(path: Path) -> Iterator[Mapping[str, Any]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise MetricsError(f"{path}:{lineno}: invalid JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise MetricsError(f"{path}:{lineno}: expected a JSON object")
            yield _normalise(obj)


def _read_csv(path: Path) -> Iterator[Mapping[str, Any]]:
    """Two streaming passes: decide which columns are numeric, then yield the events."""
    numeric: set[str] | None = None
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if numeric is None:
                numeric = set(r) - {"request_id", "model_id", "model_version"}
            numeric -= {n for n in numeric if r.get(n) and parse_number(r[n]) is None}
    if numeric is None:
        return
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            event: dict[str, Any] = {}
            for name, text in r.items():
                if text in ("", None):
                    event[name] = None
                else:
                    event[name] = parse_number(text) if name in numeric else text
            yield _normalise(event)


__all__ = ["ColumnProfile", "ReferenceProfile", "segment_options"]
