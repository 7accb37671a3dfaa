"""A paused partition stays paused when Faust's stream buffer drains (runtime/faust_fixes.py)."""

from __future__ import annotations

from typing import Any

from stream.runtime import faust_fixes


class FakeConsumer:
    def __init__(self) -> None:
        self._buffered_partitions: set[str] = {"labels-0", "preds-0"}
        self._paused_partitions: set[str] = {"labels-0"}
        self.active: set[str] = set()

    def _get_active_partitions(self) -> set[str]:
        return self.active


def test_buffer_drop_reactivates_only_unpaused_partitions() -> None:
    consumer: Any = FakeConsumer()
    faust_fixes._on_buffer_drop(consumer, "labels-0")
    faust_fixes._on_buffer_drop(consumer, "preds-0")
    assert consumer.active == {"preds-0"}
    assert consumer._buffered_partitions == set()


def test_apply_patches_faust() -> None:
    from faust.transport.consumer import Consumer

    faust_fixes.apply()
    assert Consumer.on_buffer_drop is faust_fixes._on_buffer_drop


def test_a_message_no_stream_handed_over_is_not_acked(monkeypatch: Any) -> None:
    """Skipped during a rebalance, it is read again; acking it would let a commit pass it."""
    calls: list[int] = []
    monkeypatch.setattr(faust_fixes, "_original_ack",
                        lambda self, message: calls.append(message.offset) or True)
    skipped = type("Message", (), {"tracked": False, "offset": 0})()
    handed_over = type("Message", (), {"tracked": True, "offset": 1})()
    assert faust_fixes._ack(None, skipped) is False
    assert faust_fixes._ack(None, handed_over) is True
    assert calls == [1]
