"""Ingest counts per (model, window): the ``window_metrics`` family ``ingest``.

Stage 1 already ships, per window and source partition, how many valid predictions it had
(a partial's ``n``), how many came late and how many labels joined (the labelled side).
What it did not ship is what it threw away: duplicates (a repeated ``request_id``) and
rejected events (dead letters). :class:`IngestLedger` counts those per source partition and
(model, window); stage 1 puts a window's counts in the header of its ``perf`` frame (key
``ing``), which stage 2 keeps per source and replaces on every re-send, and sums over the
sources. :func:`ingest_rows` turns the sums into rows.

Why the counts survive a replay without being doubled: the ledger is one value in the join
table (beside the closed-through marks), written at stage 1's checkpoint with, per input
topic, the offset through which messages are counted. A message at or below that offset was
counted before a crash and is not counted again when it is read again; one above it was not
in the checkpoint, so its message was not acked either and the replay counts it once. (A
message that holds only rejects is held for the checkpoint like any other.) The other counts
are rebuilt from the same events as the window states, so a replay gives the same numbers.

Where a rejected event goes: to ``(model_id, model_version, window of timestamp)`` when its
raw JSON is an object with a valid ``model_id`` string and an integer epoch-ms
``timestamp`` (``model_version`` if it is a string, else ``""``); otherwise, or when its
window is past the label horizon on its model's clock, or the ledger holds
:data:`MAX_WINDOWS` windows already, to model :data:`UNKNOWN_MODEL` and the window of the
worker's wall clock. A reject for a window that stage 2 has already finalised revises that
window's ingest rows, as a late label does (docs/operations.md, "Ingest counts").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final

import orjson

from stream.events import MAX_EPOCH_MS, EventKind, Rejected
from stream.join.store import MARK_PREFIX
from stream.results import ALL_SEGMENT, MetricRow
from stream.windows.frames import WindowId, window_start

FAMILY: Final = "ingest"
#: Model of the events that cannot be attributed (no usable ``model_id``/``timestamp``).
UNKNOWN_MODEL: Final = "_unknown"
#: Windows a partition's ledger holds at most; beyond, rejects go to :data:`UNKNOWN_MODEL`
#: (a producer sending junk model ids must not grow the checkpoint without bound).
MAX_WINDOWS: Final = 4096
#: Rejected values larger than this are not parsed to attribute them (cost).
MAX_PARSE_BYTES: Final = 64 * 1024
_MODEL_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_REJECTED: Final = "rejected:"
#: The ledger's counters (``rejected:<reason>`` besides).
DUPLICATE_PREDICTIONS: Final = "duplicate_predictions"
DUPLICATE_LABELS: Final = "duplicate_labels"


def attribute(rejected: Rejected) -> tuple[str, str, int] | None:
    """``(model_id, model_version, timestamp)`` of a rejected event, if its raw JSON says.

    Only a ``model_id`` that is a valid identifier (the schema's pattern) is taken: a
    rejected event may carry anything, and the value becomes a store key."""
    raw = rejected.raw
    if rejected.reason == "too_large" or len(raw) > MAX_PARSE_BYTES:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    model_id, ts = doc.get("model_id"), doc.get("timestamp")
    if type(model_id) is not str or _MODEL_ID.fullmatch(model_id) is None:
        return None
    if type(ts) is not int or not 0 <= ts <= MAX_EPOCH_MS:
        return None
    version = doc.get("model_version", "")
    if type(version) is not str or len(version) > 128:
        version = ""
    return model_id, version, ts


class IngestLedger:
    """Duplicates and rejects per (model, window) of one source partition (see the module).

    ``table`` is the join table: the ledger is the value under :meth:`key`.
    ``model_time``: a model's event-time clock here (newest prediction time), None if the
    partition has none; ``clock``: the wall clock, s."""

    def __init__(self, partition: int, table: MutableMapping[bytes, bytes], size_ms: int,
                 horizon_ms: int, model_time: Callable[[str], int | None],
                 clock: Callable[[], float]) -> None:
        self.partition = partition
        self.table = table
        self.size_ms = size_ms
        self.horizon_ms = horizon_ms
        self.model_time = model_time
        self.clock = clock
        self.counts: dict[WindowId, Counter[str]] = {}
        #: Per input topic kind, the offset through which messages were counted (and
        #: checkpointed); ``seen``: through which they are counted now.
        self.through: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.dirty = False
        raw = table.get(self.key)
        if raw is not None:
            doc = orjson.loads(raw)
            self.through = {str(k): int(v) for k, v in doc["through"].items()}
            self.seen = dict(self.through)
            for wid, counts in doc["counts"]:
                self.counts[WindowId.from_list(wid)] = Counter(
                    {str(k): int(v) for k, v in counts.items()})

    @property
    def key(self) -> bytes:
        """In the join table, beside the closed-through marks (``~`` is no model id's)."""
        return MARK_PREFIX + b"%d:~ingest" % self.partition

    def fresh(self, kind: EventKind, offset: int) -> bool:
        """Whether the message at ``offset`` is to be counted (not counted before a crash)."""
        self.seen[kind] = max(self.seen.get(kind, -1), offset)
        return offset > self.through.get(kind, -1)

    def add(self, wid: WindowId, name: str, n: int = 1) -> None:
        self.counts.setdefault(wid, Counter())[name] += n
        self.dirty = True

    def unknown(self) -> WindowId:
        """The window of what cannot be attributed: model ``_unknown``, the wall clock's."""
        return WindowId(window_start(int(self.clock() * 1000), self.size_ms), UNKNOWN_MODEL,
                        "")

    def target(self, wid: WindowId | None) -> WindowId:
        """``wid``, unless unknown, past the label horizon on its model's clock here (stage
        2 forgets such windows) or the ledger is full: then the ``_unknown`` window."""
        if wid is None:
            return self.unknown()
        model_time = self.model_time(wid.model_id)
        past = model_time is not None and wid.end(self.size_ms) + self.horizon_ms < model_time
        if past or (wid not in self.counts and len(self.counts) >= MAX_WINDOWS):
            return self.unknown()
        return wid

    def duplicate(self, wid: WindowId | None, name: str, kind: EventKind,
                  offset: int) -> list[WindowId]:
        """Count a duplicate in ``wid`` (None: not known here); return the windows whose
        counts changed."""
        if not self.fresh(kind, offset):
            return []  # counted before a restart (the checkpoint says)
        target = self.target(wid)
        self.add(target, name)
        return [target]

    def rejected(self, rejects: Iterable[Rejected], kind: EventKind,
                 offset: int) -> list[WindowId]:
        """Count one message's rejects; return the windows whose counts changed.

        A message without rejects leaves the ledger alone: ``through`` only needs to pass
        the messages that counted something, so the table is written only when counts
        change (not at every checkpoint)."""
        rejects = list(rejects)
        if not rejects or not self.fresh(kind, offset):
            return []
        changed: list[WindowId] = []
        for rejected in rejects:
            found = attribute(rejected)
            wid = None
            if found is not None:
                model_id, version, ts = found
                wid = WindowId(window_start(ts, self.size_ms), model_id, version)
            target = self.target(wid)
            self.add(target, _REJECTED + rejected.reason)
            changed.append(target)
        return changed

    def window(self, wid: WindowId) -> dict[str, int]:
        """The window's counts, for the ``ing`` header of its ``perf`` frame."""
        return dict(sorted(self.counts.get(wid, {}).items()))

    def retain(self, windows: Iterable[WindowId]) -> None:
        """Forget the windows stage 1 forgot (their last counts were shipped)."""
        keep = set(windows)
        for wid in [w for w in self.counts if w not in keep]:
            del self.counts[wid]
            self.dirty = True

    def checkpoint(self) -> bytes | None:
        """The value to write in the join table at this checkpoint; None: unchanged."""
        if not self.dirty and self.seen == self.through:
            return None
        self.dirty = False
        self.through = dict(self.seen)
        return orjson.dumps({"through": self.through, "counts": [
            [wid.as_list(), dict(c)] for wid, c in sorted(self.counts.items())]})


def sum_counts(headers: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """The sources' ``ing`` counts of one window, summed (each source's latest frame)."""
    total: Counter[str] = Counter()
    for header in headers:
        for name, value in (header.get("ing") or {}).items():
            total[str(name)] += int(value)
    return total


def ingest_rows(wid: WindowId, size_ms: int, predictions: int, late: int, labels_joined: int,
                counts: Mapping[str, int], now: int) -> list[MetricRow]:
    """The window's ``ingest`` rows (segment ``all``).

    ``predictions``: valid predictions of the window, late ones included (``late`` of
    them); ``labels_joined``: labels joined to them; ``counts``: duplicates and rejects
    (:func:`sum_counts`). One ``rejected`` row per reason (``feature`` = reason), one with
    ``feature`` ``""`` for all reasons, and ``rejected_share``: rejected over every event
    attributed to the window (what a dead-letter-rate rule reads). ``revision`` is that
    total: each count only grows, so a later revision never carries smaller counts, and a
    re-sent frame (same counts) writes the same rows."""
    reasons = {name[len(_REJECTED):]: int(v) for name, v in counts.items()
               if name.startswith(_REJECTED) and v}
    rejected = sum(reasons.values())
    figures = {
        "predictions": predictions,
        "late_predictions": late,
        "labels_joined": labels_joined,
        DUPLICATE_PREDICTIONS: int(counts.get(DUPLICATE_PREDICTIONS, 0)),
        DUPLICATE_LABELS: int(counts.get(DUPLICATE_LABELS, 0)),
    }
    total = predictions + labels_joined + figures[DUPLICATE_PREDICTIONS] + (
        figures[DUPLICATE_LABELS]) + rejected
    end = wid.end(size_ms)

    def row(metric: str, feature: str, value: float | None) -> MetricRow:
        return MetricRow(wid.model_id, wid.model_version, ALL_SEGMENT, wid.window_start, end,
                         FAMILY, metric, feature, value, total, 0, None, total, now)

    rows = [row(metric, "", float(value)) for metric, value in figures.items()]
    rows.append(row("rejected", "", float(rejected)))
    rows.extend(row("rejected", reason, float(n)) for reason, n in sorted(reasons.items()))
    rows.append(row("rejected_share", "", rejected / total if total else None))
    return rows
