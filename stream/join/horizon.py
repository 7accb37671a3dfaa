"""When a partition's join entries may go: each model's label-horizon clock.

A join entry waits for its label until the label horizon has passed its window's end. On
which clock? Live, the model's prediction event time is enough: labels come in step with
predictions. Catching up on a backlog it is not: the predictions can be read far ahead of the
labels that were sent with them (:mod:`stream.runtime.flow` pauses them, but what is already
fetched still comes), and an entry dropped on the prediction clock alone loses its label. So
each model's *horizon clock* (:attr:`stream.windows.eventtime.ModelClock.horizon_ts`) is:

(a) for a model with labels on the partition, its prediction event time held back to its
    newest label time: a label for an earlier window can still come only if labels are
    being read behind;
(b) for a model no label of which came yet, the newest event time of its predictions that
    were appended before labels now all read (:attr:`LabelHorizon.safe_offset`, worked out
    by the agent from the broker's end offsets): a label for them that comes later came
    late, as live. Not used for (a): a producer sending a backlog at many times real speed
    can append a label well after predictions minutes later in event time (each
    partition's batches leave in their own time), and that label is in time by event time;
(c) never more than :data:`LABEL_WAIT_HORIZONS` horizons behind the prediction time while
    no label message waits unread on the partition, so a label feed that stops keeps the join
    state bounded. While labels wait unread (a backlog), the cap does not apply: the
    predictions already fetched when the flow control paused them can be thousands of
    seconds of event time ahead (2,500 s in a ``make bench`` backlog, where the cap lost 550
    labels), and the labels behind them are still to come. The flow control bounds that state.

It never goes back. Stage 2 forgets finalised windows on the lowest horizon clock of the
sources holding the model, so a label read late still revises its window.
"""

from __future__ import annotations

from typing import Final

from stream.windows.eventtime import ModelClock

#: Entries of a model whose labels stopped coming wait at most this many label horizons
#: beyond their own (on the prediction clock), so that the join state stays bounded.
LABEL_WAIT_HORIZONS: Final = 3
#: :attr:`LabelHorizon.safe_offset` when every label is read (where no agent tells).
ALL_READ: Final = 1 << 62


class LabelHorizon:
    """The labels read on one partition, and the horizon clocks they allow."""

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        #: Per model, the newest label time read here (labels say their model).
        self.newest_label: dict[str, int] = {}
        #: A prediction offset such that every label appended before the prediction there
        #: was appended has been read (None: not known).
        self.safe_offset: int | None = ALL_READ
        #: Label messages wait unread on the partition (the agent asks the broker; False
        #: where nobody tells): rule (c) waits.
        self.labels_waiting = False

    def label_read(self, model_id: str, timestamp: int) -> None:
        if timestamp > self.newest_label.get(model_id, 0):
            self.newest_label[model_id] = timestamp

    def advance(self, clocks: dict[str, ModelClock]) -> None:
        """Move each model's horizon clock by rules (a), (b), (c) of the module."""
        # Runs after every message: comparisons, not min/max calls.
        safe_offset, wait_ms = self.safe_offset, LABEL_WAIT_HORIZONS * self.horizon_ms
        for model_id, clock in clocks.items():
            if safe_offset is not None:
                clock.cover(safe_offset)
            newest_label = self.newest_label.get(model_id)
            if newest_label is None:
                gate = clock.label_safe_ts
            else:
                gate = clock.max_ts if clock.max_ts < newest_label else newest_label
            if not self.labels_waiting and clock.max_ts - wait_ms > gate:
                gate = clock.max_ts - wait_ms
            if gate > clock.horizon_ts:
                clock.horizon_ts = gate

    def predictions_ahead(self, clocks: dict[str, ModelClock]) -> bool:
        """Some model's predictions are more than half a horizon (event time) ahead of its
        labels: reading more of them first would make entries wait (memory) or, past
        :data:`LABEL_WAIT_HORIZONS`, expire before their labels come."""
        half = self.horizon_ms // 2
        return any(clock.max_ts - self.newest_label[m] > half
                   for m, clock in clocks.items() if m in self.newest_label)
