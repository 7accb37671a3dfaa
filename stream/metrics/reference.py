"""The reference profile: computed once (from a file or a window state), reused per window.

Per column it keeps the kind, the true count of valid values, min/max, and either a uniform
sample of the numeric values (``sample_capacity``, default 100 000; exact below it) or the
category counts (``category_cap`` distinct, default 10 000). Memory is therefore bounded by
``8 * sample_capacity * numeric columns`` bytes, whatever the size of the reference file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from stream.config import ModelSettings
from stream.errors import MetricsError
from stream.metrics.calibration import Calibration
from stream.metrics.columns import Kind, column_kind
from stream.metrics.performance import Metrics, performance_metrics
from stream.metrics.sampling import FloatArray, pack, unpack
from stream.metrics.values import parse_number
from stream.metrics.window import WindowState

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
_VERSION: Final = 2  # 2: calibration maps (version 1 profiles still load, uncalibrated)


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
    """Reference distribution of every column, plus reference performance when labelled."""

    rows: int
    columns: Mapping[str, ColumnProfile]
    performance: Mapping[str, float | None] = field(default_factory=dict)
    labelled: int = 0
    calibration: Calibration | None = None

    @classmethod
    def from_state(cls, state: WindowState) -> ReferenceProfile:
        """Profile of everything a state received (use a large ``sample_capacity``)."""
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
        perf: Metrics = performance_metrics(state) if state.n_labelled else {}
        calibration = Calibration.fit(state.task, state.labelled_scores)
        return cls(state.n_predictions, cols, perf, state.n_labelled, calibration)

    @classmethod
    def from_events(
        cls,
        events: Iterable[Mapping[str, Any]],
        model: ModelSettings,
        *,
        sample_capacity: int = 100_000,
        category_cap: int = 10_000,
        batch_size: int = 10_000,
    ) -> ReferenceProfile:
        """Profile of prediction events; an event's ``label`` field, when present, is used."""
        state = WindowState(
            model.task,
            model.positive_label,
            sample_capacity=sample_capacity,
            category_cap=category_cap,
            max_columns=100_000,
        )
        batch: list[Mapping[str, Any]] = []
        for event in events:
            batch.append(event)
            if len(batch) >= batch_size:
                _add(state, batch)
                batch = []
        _add(state, batch)
        return cls.from_state(state)

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
        cols: dict[str, Any] = {}
        for i, (name, c) in enumerate(self.columns.items()):
            cols[name] = [c.kind, c.count, c.min, c.max, dict(c.counts)]
            if c.kind == "numeric":
                arrays[str(i)] = c.sample
        meta = {
            "v": _VERSION,
            "rows": self.rows,
            "labelled": self.labelled,
            "performance": dict(self.performance),
            "columns": cols,
            "calibration": None if self.calibration is None else self.calibration.to_json(),
        }
        return pack(meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        meta, arrays = unpack(data)
        if meta.get("v") not in (1, _VERSION):
            raise MetricsError(f"unsupported reference profile version {meta.get('v')!r}")
        cols = {}
        for i, (name, (kind, count, lo, hi, counts)) in enumerate(meta["columns"].items()):
            sample = arrays.get(str(i), np.empty(0))
            cols[name] = ColumnProfile(kind, int(count), lo, hi, sample, counts)
        cal = meta.get("calibration")
        return cls(int(meta["rows"]), cols, meta["performance"], int(meta["labelled"]),
                   Calibration.from_json(cal) if cal is not None else None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceProfile):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]


def _add(state: WindowState, batch: list[Mapping[str, Any]]) -> None:
    if not batch:
        return
    state.add_predictions(batch)
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


__all__ = ["ColumnProfile", "ReferenceProfile"]
