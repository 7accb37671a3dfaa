"""Events from files: JSON Lines, CSV, Parquet, validated exactly as the stream validates.

Every record goes through :mod:`stream.events`' validator (the one the ingest agent runs), so
a file gives the windows the same events the topic would. A record that fails is counted by
reason in a :class:`Tally` (with a few examples naming file and line or row), never raised:
one bad row in a day of history must not stop the backfill.

CSV and Parquet are flat, events are not: a column ``features.x`` is the feature ``x``,
``segments.country`` the segment key ``country``, ``scores.<class>`` a class score. Parquet
may instead hold ``features``/``segments``/``scores`` as struct or map columns. CSV has one
type per column: a column whose non-empty cells all parse as numbers is numeric (as the
reference reader decides, :mod:`stream.metrics.reference`), every other one is text, and
segment values and ids are always text. An empty cell is an absent field (a null feature).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from stream.errors import StreamError, ValidationError
from stream.events import VALIDATORS, EventKind
from stream.metrics.values import parse_number

Format = Literal["auto", "jsonl", "csv", "parquet"]
FORMATS: Final = ("auto", "jsonl", "csv", "parquet")
_SUFFIXES: Final[dict[str, Format]] = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
}
#: Flat column prefixes that nest into an event's mappings.
NESTED: Final = ("features", "segments", "scores")
#: CSV columns that are always text, whatever their cells look like.
_TEXT_COLUMNS: Final = frozenset({"request_id", "model_id", "model_version"})
#: CSV columns that are always numbers when they parse as one (single cells, not the column).
_NUMBER_COLUMNS: Final = frozenset({"timestamp", "probability", "latency_ms", "schema_version"})
EXAMPLES_KEPT: Final = 5


class BackfillError(StreamError):
    """A file cannot be read at all (missing, unknown format): the backfill stops."""


@dataclass(slots=True)
class Tally:
    """What was read: valid events and rejects per (kind, reason), with a few examples."""

    valid: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def reject(self, kind: str, reason: str, where: str, detail: str) -> None:
        self.rejected[(kind, reason)] += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(f"{where}: {kind} {reason}: {detail}")


def detect_format(path: Path, fmt: Format = "auto") -> Format:
    """``fmt`` unless ``auto``; then from the suffix (``.jsonl/.ndjson/.json/.csv/.parquet``)."""
    if fmt != "auto":
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise BackfillError(f"{path}: cannot tell the format from the suffix; use --format")
    return found


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"features.x": 1}`` -> ``{"features": {"x": 1}}``; ``None`` means absent (except in
    ``features``, where it is a null value, as in a JSON event)."""
    event: dict[str, Any] = {}
    for name, value in flat.items():
        prefix, dot, key = name.partition(".")
        if dot and prefix in NESTED:
            if value is not None or prefix == "features":
                event.setdefault(prefix, {})[key] = value
        elif value is not None:
            event[name] = value
    for prefix in NESTED:
        value = event.get(prefix)
        if isinstance(value, list):  # a Parquet map column reads as (key, value) pairs
            event[prefix] = dict(value)
        if prefix != "features" and isinstance(event.get(prefix), dict):
            event[prefix] = {k: v for k, v in event[prefix].items() if v is not None}
    return event


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield where, ValidationError("not_json", str(exc))
                continue
            if type(doc) is list:  # a batch, as a topic message may be
                if not doc:
                    yield where, ValidationError("empty_batch", "a batch holds no event")
                for i, item in enumerate(doc):
                    yield f"{where}[{i}]", item
            else:
                yield where, doc


def _csv_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Two streaming passes: which columns are numeric, then the rows."""
    numeric: set[str] | None = None
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if numeric is None:
                numeric = {n for n in row if n not in _TEXT_COLUMNS
                           and not n.startswith("segments.")}
            numeric -= {n for n in numeric if row.get(n) and parse_number(row[n]) is None}
    if numeric is None:
        return
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:  # more cells than header names
                yield where, ValidationError("wrong_type", "more cells than columns")
                continue
            flat: dict[str, Any] = {}
            for name, text in row.items():
                if text is None or text == "":
                    flat[name] = None
                elif name in numeric or name in _NUMBER_COLUMNS:
                    number = parse_number(text)
                    flat[name] = text if number is None else number
                else:
                    flat[name] = text
            yield where, nest(flat)


def _parquet_records(path: Path, batch_rows: int = 10_000) -> Iterator[tuple[str, Any]]:
    """Record batches, so a large file is never whole in memory; timestamps as epoch ms."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise BackfillError(f"{path}: not a readable Parquet file: {exc}") from exc
    row = 0
    for batch in parquet.iter_batches(batch_size=batch_rows):
        columns = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_timestamp(column.type):  # UTC instants; naive ones read as UTC
                column = pc.cast(column, pa.timestamp("ms", column.type.tz), safe=False)
                column = column.cast(pa.int64())
            columns[name] = column
        for record in pa.RecordBatch.from_pydict(columns).to_pylist():
            row += 1
            yield f"{path}:row {row}", nest(record)


_READERS: Final[dict[str, Callable[[Path], Iterator[tuple[str, Any]]]]] = {
    "jsonl": _jsonl_records, "csv": _csv_records, "parquet": _parquet_records,
}


def read_events(path: str | Path, kind: EventKind, tally: Tally,
                fmt: Format = "auto") -> Iterator[dict[str, Any]]:
    """The valid events of one file, in file order; rejects go to ``tally``."""
    p = Path(path)
    records = _READERS[detect_format(p, fmt)]
    validate = VALIDATORS[kind]
    try:
        for where, record in records(p):
            if isinstance(record, ValidationError):
                tally.reject(kind, record.reason, where, record.detail)
                continue
            try:
                event = validate(record)
            except ValidationError as exc:
                tally.reject(kind, exc.reason, where, exc.detail)
                continue
            tally.valid[kind] += 1
            yield event
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BackfillError(f"cannot read {p}: {exc}") from exc
