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

from dataclasses import dataclass, field
from typing import Final

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
