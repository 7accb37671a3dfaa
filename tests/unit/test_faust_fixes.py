"""A paused partition stays paused when Faust's stream buffer drains (stream/faust_fixes.py)."""

from __future__ import annotations

from typing import Any

from stream import faust_fixes


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


class FakeFetcher:
    """Just what ``Consumer.getmany`` touches."""

    def __init__(self, records: dict[str, list[int]]) -> None:
        self.records = records
        self.active = set(records)
        self.flow_active = True
        self.should_stop = False
        self.app: Any = type("App", (), {"consumer_generation_id": 1,
                                         "monitor": type("M", (), {
                                             "track_tp_end_offset": staticmethod(
                                                 lambda tp, hw: None)})()})()
        self.scheduler: Any = type("S", (), {"iterate": staticmethod(
            lambda recs: ((tp, r) for tp, rs in recs.items() for r in rs))})()

    async def _wait_next_records(self, timeout: float) -> Any:
        return self.records, self.active

    def highwater(self, tp: str) -> int:
        return 0

    def _to_message(self, tp: str, record: int) -> tuple[str, int]:
        return tp, record


def collect(consumer: Any, on_yield: Any = None) -> list[tuple[str, int]]:
    import asyncio

    async def run() -> list[tuple[str, int]]:
        out = []
        async for tp, message in faust_fixes._getmany(consumer, 1.0):
            out.append(message)
            if on_yield:
                on_yield(consumer, tp)
        return out

    return asyncio.run(run())


def test_getmany_hands_over_records_of_a_partition_we_paused_mid_batch() -> None:
    """Faust dropped these (and then committed past them as a "gap")."""
    consumer = FakeFetcher({"labels-0": [5, 6, 7], "preds-0": [1, 2]})
    consumer._buffered_partitions = set()

    def pause_labels(c: Any, tp: str) -> None:
        faust_fixes.held.add("labels-0")  # our flow control pausing labels after the first
        c.active.discard("labels-0")

    try:
        got = collect(consumer, pause_labels)
    finally:
        faust_fixes.held.clear()
    assert got == [("labels-0", 5), ("labels-0", 6), ("labels-0", 7),
                   ("preds-0", 1), ("preds-0", 2)]


def test_getmany_still_drops_records_of_a_partition_faust_paused() -> None:
    """Around a rebalance Faust pauses stream partitions and seeks them back afterwards;
    records fetched before the seek must not advance the read offset."""
    consumer = FakeFetcher({"preds-0": [40, 41], "preds-1": [1]})
    consumer._buffered_partitions = set()
    consumer.active.discard("preds-0")
    assert collect(consumer) == [("preds-1", 1)]


def test_getmany_stops_at_a_rebalance() -> None:
    """What is not handed over then is read again from the committed offsets."""
    consumer = FakeFetcher({"preds-0": [1, 2, 3]})
    consumer._buffered_partitions = set()

    def rebalance(c: Any, tp: str) -> None:
        c.app.consumer_generation_id = 2

    assert collect(consumer, rebalance) == [("preds-0", 1)]


def test_getmany_drops_a_batch_fetched_before_a_rebalance() -> None:
    """Fetched at the old positions: handed over, they would open an offset gap."""
    consumer = FakeFetcher({"partials-1": [3, 4]})
    consumer._buffered_partitions = set()
    fetch = consumer._wait_next_records

    async def rebalance_during_fetch(timeout: float) -> Any:
        consumer.app.consumer_generation_id = 2
        return await fetch(timeout)

    consumer._wait_next_records = rebalance_during_fetch  # type: ignore[method-assign]
    assert collect(consumer) == []


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
