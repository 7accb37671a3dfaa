"""The join state: one table entry per ``request_id``, on the partition of that id.

An entry is written when a prediction or a label arrives, and holds what the other side needs:
for a prediction, its window, the few fields performance needs, and its segment values; for a
label, the label. It also records the *position* (offset and index in a batch message) of the
event that wrote each side, which is how a replay after a crash is told apart from a duplicate:
the same request at the same position is the same event seen again (process it as before);
at another position it is a duplicate (count it once, ignore it).

The table is the source of truth for everything labels affect: the labelled side of each
window (:class:`PerfMirror`) is a function of the entries and is rebuilt from them after a
restart, so a label can never be counted twice, whatever was flushed before a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from stream.metrics.segments import SegmentRouter
from stream.metrics.window import WindowState
from stream.windows.frames import WindowId

#: A (prediction, label) pair as the metrics engine takes it (see :meth:`Entry.pair`).
LabelledPair = tuple[dict[str, Any], Any]

#: Events per Kafka message at most; positions are ``offset << POS_BITS | index``.
POS_BITS: Final = 20


def position(offset: int, index: int) -> int:
    """A total order of events within one topic partition."""
    return offset << POS_BITS | index


@dataclass(slots=True)
class Entry:
    """One request's join state. ``pos is None``: only the label is known (an early label)."""

    partition: int
    request_id: str = ""
    pos: int | None = None
    window: WindowId | None = None
    ts: int = 0
    outcome: dict[str, Any] = field(default_factory=dict)  # prediction/probability/scores
    segments: dict[str, Any] = field(default_factory=dict)  # configured segment values
    late: bool = False
    label: Any = None
    lpos: int | None = None
    lts: int = 0
    #: Table records (packs, :mod:`stream.join.store`) holding each side; not serialised.
    pred_pack: bytes | None = None
    label_pack: bytes | None = None

    @property
    def has_label(self) -> bool:
        return self.lpos is not None

    def expires_at(self, window_size_ms: int, horizon_ms: int, early_ttl_ms: int) -> int:
        """Event time after which the entry is dropped (label horizon, or early-label TTL)."""
        if self.window is None:
            return self.lts + early_ttl_ms
        return self.window.end(window_size_ms) + horizon_ms

    def pair(self) -> LabelledPair:
        """The (prediction, label) pair the metrics engine takes (the id keys its sampling)."""
        return labelled_pair(self.request_id, self.outcome, self.segments, self.label)

    def to_doc(self, prediction: bool = True, label: bool = True) -> dict[str, Any]:
        """The entry's prediction side, label side, or both, as a JSON-ready mapping."""
        doc: dict[str, Any] = {"p": self.partition, "r": self.request_id}
        if prediction and self.pos is not None and self.window is not None:
            doc.update(pos=self.pos, w=self.window.as_list(), ts=self.ts, o=self.outcome,
                       s=self.segments, late=self.late)
        if label and self.lpos is not None:
            doc.update(lab=self.label, lpos=self.lpos, lts=self.lts)
        return doc

    def encode(self) -> bytes:
        return orjson.dumps(self.to_doc())

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        return cls.from_doc(orjson.loads(raw))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Entry:
        entry = cls(partition=int(doc["p"]), request_id=doc["r"])
        if "pos" in doc:
            entry.pos = int(doc["pos"])
            entry.window = WindowId.from_list(doc["w"])
            entry.ts = int(doc["ts"])
            entry.outcome = doc["o"]
            entry.segments = doc["s"]
            entry.late = bool(doc["late"])
        if "lpos" in doc:
            entry.label = doc["lab"]
            entry.lpos = int(doc["lpos"])
            entry.lts = int(doc["lts"])
        return entry


_NONE: Final[Mapping[str, Any]] = {}


def labelled_pair(request_id: str, outcome: Mapping[str, Any], segments: Mapping[str, Any],
                  label: Any) -> LabelledPair:
    """What the metrics engine takes of a joined request: the prediction's outcome fields
    and segment values under its id (which keys the row sampling), and the label."""
    return {"request_id": request_id, **outcome, "segments": segments}, label


def prediction_fields(event: Mapping[str, Any], segment_keys: tuple[str, ...]) -> tuple[
    dict[str, Any], dict[str, Any]
]:
    """What an entry keeps of a prediction (a valid one): the outcome fields and the segment
    values. (Spelled out: it runs for every prediction, and a comprehension over the
    three outcome fields cost twice as much.)"""
    outcome = {"prediction": event["prediction"]}
    if "probability" in event:
        outcome["probability"] = event["probability"]
    if "scores" in event:
        outcome["scores"] = event["scores"]
    if not segment_keys:
        return outcome, {}
    segs = event.get("segments") or _NONE
    feats = event.get("features") or _NONE
    values: dict[str, Any] = {}
    for key in segment_keys:
        value = segs[key] if key in segs else feats.get(key)
        if value is not None:
            values[key] = value
    return outcome, values


@dataclass(slots=True)
class PerfWindow:
    """The labelled side of one window on one partition, per segment, plus late events."""

    router: SegmentRouter
    states: dict[str, WindowState] = field(default_factory=dict)
    late: int = 0
    dirty: bool = False
    #: Labelled pairs not yet added to ``states`` (stage 1 folds them in batches).
    pending: list[tuple[dict[str, Any], Any]] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        state = self.states.get("all")
        return state.n_labelled if state is not None else 0
