"""The input flow control's pause and resume switches (stream.runtime.flow)."""

from __future__ import annotations

from typing import Any

from faust.types import TP

from stream.runtime.flow import InputFlow


class FakeConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TP]]] = []

    def pause_partitions(self, tps: set[TP]) -> None:
        self.calls.append(("pause", tps))

    def resume_partitions(self, tps: set[TP]) -> None:
        self.calls.append(("resume", tps))


def test_a_side_is_paused_and_resumed_once_per_switch_and_each_switch_is_counted() -> None:
    consumer = FakeConsumer()
    contiguity: Any = None  # not asked by the switches
    flow = InputFlow(lambda: consumer, contiguity, "preds", "labels")
    preds, labels = TP("preds", 2), TP("labels", 2)
    flow._set(preds, True)
    flow._set(preds, True)  # already paused: no second call
    flow._set(labels, None)  # unknown: left as it is
    flow._set(preds, False)
    flow._set(preds, False)
    flow._set(labels, True)
    assert consumer.calls == [("pause", {preds}), ("resume", {preds}), ("pause", {labels})]
    assert flow.paused == {labels}
    assert flow.switches == {"pause_predictions": 1, "pause_labels": 1,
                             "resume_predictions": 1, "resume_labels": 0}
