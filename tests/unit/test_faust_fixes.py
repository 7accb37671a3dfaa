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
    from faust.transport.producer import ProducerBuffer

    assert ProducerBuffer.flush is not faust_fixes._flush  # not applied: see apply()


def test_flush_waits_for_the_queue_and_the_message_in_flight() -> None:
    import asyncio

    class Buffer:
        state = "running"

        def __init__(self) -> None:
            self.queue = 3
            self._in_flight = 1

        @property
        def size(self) -> int:
            return self.queue

    async def scenario() -> bool:
        buffer: Any = Buffer()

        async def drain() -> None:
            while buffer.queue:
                await asyncio.sleep(0.01)
                buffer.queue -= 1
            await asyncio.sleep(0.05)
            buffer._in_flight = 0

        task = asyncio.ensure_future(drain())
        await faust_fixes._flush(buffer)
        done = buffer.queue == 0 and buffer._in_flight == 0
        await task
        return done

    assert asyncio.run(scenario())
