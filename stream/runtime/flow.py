"""Which input of a partition to hold back, so that a backlog is read as it was sent.

A live worker reads predictions and labels as they are produced: a label comes after its
prediction, within the label horizon, and joins. Catching up on a backlog, the consumer
fetches both topics as fast as it can and either can run far ahead of the other:

- labels ahead: they wait as early labels
  (:meth:`stream.windows.partition_state.PartitionState.labels_too_far_ahead` pauses the
  labels partition while too many wait);
- predictions ahead: their join entries expire once the model's prediction clock passes the
  window end plus the label horizon, before labels that were sent in time are read, and
  those labels are lost (38,064 of 50,001 joined in one ``make bench`` backlog).

The second is fixed as Kafka Streams synchronises the partitions of a task by timestamp: a
partition's predictions are held back while labels that were appended *earlier* wait unread
on the same partition. Each side's position is the append time (the Kafka message
timestamp) of the last message processed; the predictions are paused while they are more
than ``slack_s`` ahead of the labels and the labels partition has messages unread, and
resumed when either stops being true. Reading in append order replays the backlog as the
live stream was, so a label joins exactly when it would have joined live.

Never both sides: while the labels are paused (too many early labels), the predictions
are not, or neither would move.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from faust.types import TP

from stream.runtime.contiguity import Contiguity
from stream.windows.partition import PartitionStage

#: Seconds of append time the predictions may run ahead of unread labels.
SLACK_S: Final = 1.0


@dataclass(slots=True)
class AppendClock:
    """Per input partition, the append time (s) of the last message processed."""

    read_at: dict[tuple[str, int], float] = field(default_factory=dict)

    def processed(self, topic: str, partition: int, timestamp: float | None) -> None:
        if timestamp is not None and timestamp > self.read_at.get((topic, partition), 0.0):
            self.read_at[(topic, partition)] = timestamp

    def get(self, topic: str, partition: int) -> float | None:
        return self.read_at.get((topic, partition))

    def forget(self, topic: str, partition: int) -> None:
        self.read_at.pop((topic, partition), None)


def hold_predictions(predictions_at: float | None, labels_at: float | None,
                     labels_unread: int, labels_paused: bool, ahead: bool = False,
                     slack_s: float = SLACK_S) -> bool:
    """Whether a partition's predictions should wait for its labels.

    ``predictions_at`` / ``labels_at``: append times of the last message processed on each
    side (None: none yet); ``labels_unread``: messages on the labels partition not yet
    processed (0 when unknown); ``ahead``: some model's predictions are ahead of its labels
    in event time (:meth:`stream.join.horizon.LabelHorizon.predictions_ahead`).

    Examples
    --------
    >>> hold_predictions(100.0, 50.0, labels_unread=10, labels_paused=False)
    True
    >>> hold_predictions(100.0, 50.0, labels_unread=0, labels_paused=False)  # none to read
    False
    >>> hold_predictions(100.0, 99.5, labels_unread=10, labels_paused=False)  # within slack
    False
    >>> hold_predictions(100.0, 50.0, labels_unread=10, labels_paused=True)  # never both
    False
    >>> hold_predictions(100.0, None, labels_unread=10, labels_paused=False)  # none read yet
    True
    >>> hold_predictions(100.0, 100.0, labels_unread=10, labels_paused=False, ahead=True)
    True
    """
    if labels_paused or labels_unread <= 0 or predictions_at is None:
        return False
    return ahead or labels_at is None or predictions_at - labels_at > slack_s


class InputFlow:
    """The agent's side of the rules above, for every assigned input partition: which side
    is paused, where each was appended, and how far the labels are read (the stage's
    :attr:`stream.join.horizon.LabelHorizon.safe_offset`)."""

    def __init__(self, consumer: Callable[[], Any], contiguity: Contiguity,
                 predictions: str, labels: str) -> None:
        self._consumer = consumer  # Faust creates its consumer late: asked when needed
        self._contiguity = contiguity
        self._predictions, self._labels = predictions, labels
        self.paused: set[TP] = set()
        self.appended = AppendClock()
        #: Per partition, the labels partition's end as the broker said on the last tick
        #: (the fetcher's high watermark stands still while the partition is paused).
        self.labels_ends: dict[int, int] = {}
        #: Per partition, (labels end, predictions end) asked of the broker in the reverse
        #: order on each tick; once the agent reaches such a labels end, every label appended
        #: before the predictions below that predictions end has been read.
        self.label_marks: dict[int, deque[tuple[int, int]]] = {}
        self.safe_offsets: dict[int, int] = {}
        #: Pauses and resumes since the start, by input (``/stats``).
        self.switches: dict[str, int] = {"pause_predictions": 0, "pause_labels": 0,
                                         "resume_predictions": 0, "resume_labels": 0}

    def processed(self, message: Any) -> None:
        """A message of an input partition was processed (refetched ones have no time)."""
        self.appended.processed(message.topic, message.partition,
                                getattr(message, "timestamp", None))

    def ends(self, partition: int, predictions_end: int, labels_end: int) -> None:
        """The broker's ends of both partitions, the predictions' asked first."""
        self.labels_ends[partition] = labels_end
        self.label_marks.setdefault(partition, deque(maxlen=10_000)).append(
            (labels_end, predictions_end))

    def labels_unread(self, partition: int) -> int | None:
        """Label messages on the partition the agent has not processed (None: not known)."""
        tp = TP(self._labels, partition)
        expected = self._contiguity.expected(tp)
        if expected is None:
            return None
        try:
            highwater = self._consumer().highwater(tp) or 0
        except Exception:  # not assigned (any more)
            highwater = 0
        return max(max(highwater, self.labels_ends.get(partition, 0)) - expected, 0)

    def control(self, stage: PartitionStage) -> None:
        """After each message: pause the partition's labels while too many wait for their
        predictions, its predictions by :func:`hold_predictions`; tell the stage how far
        the labels are read."""
        p = stage.partition
        labels, predictions = TP(self._labels, p), TP(self._predictions, p)
        self._set(labels, stage.labels_too_far_ahead())
        unread = self.labels_unread(p)
        marks, expected = self.label_marks.get(p), self._contiguity.expected(labels)
        while marks and expected is not None and marks[0][0] <= expected:
            self.safe_offsets[p] = marks.popleft()[1]
        stage.horizon.safe_offset = self.safe_offsets.get(p)
        stage.horizon.labels_waiting = unread is None or unread > 0
        self._set(predictions, hold_predictions(
            self.appended.get(self._predictions, p), self.appended.get(self._labels, p),
            unread or 0, labels in self.paused, stage.horizon.predictions_ahead(stage.clocks)))

    def forget(self, revoked: Iterable[TP]) -> None:
        for tp in revoked:
            self.paused.discard(tp)
            self.appended.forget(tp.topic, tp.partition)
            if tp.topic == self._labels:
                self.labels_ends.pop(tp.partition, None)
                self.label_marks.pop(tp.partition, None)
                self.safe_offsets.pop(tp.partition, None)

    def _set(self, tp: TP, pause: bool | None) -> None:
        if pause and tp not in self.paused:
            self._consumer().pause_partitions({tp})
            self.paused.add(tp)
            self._count("pause", tp)
        elif pause is False and tp in self.paused:
            self._consumer().resume_partitions({tp})
            self.paused.discard(tp)
            self._count("resume", tp)

    def _count(self, switch: str, tp: TP) -> None:
        side = "predictions" if tp.topic == self._predictions else "labels"
        self.switches[f"{switch}_{side}"] += 1
