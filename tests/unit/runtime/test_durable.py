"""Acks wait for the delivery of every table write made before them (stream/runtime/durable.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.runtime.durable import AckAfterDelivery, ChangelogWriteFailed, WriteLog


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def recorder() -> tuple[list[Any], Any]:
    """What was acked, and the ack function that records it."""
    acked: list[Any] = []

    async def ack(events: Any) -> None:
        acked.extend(events)

    return acked, ack


def test_acks_wait_for_their_writes_and_all_earlier_ones() -> None:
    async def scenario() -> None:
        acked, ack = recorder()
        loop = asyncio.get_running_loop()
        acks = AckAfterDelivery(ack)
        log = WriteLog()
        first, second = loop.create_future(), loop.create_future()
        log.add(first)
        await acks.after(log.take(), ["m0"])  # m0's join write still in flight
        log.add(second)
        await acks.after(log.take(), ["m1"])
        await acks.after(log.take(), ["m2"])  # wrote nothing itself, but comes after m0, m1
        assert acked == [] and acks.pending() == 3
        second.set_result(None)  # m1's write lands first: m0 still holds everything
        await acks.drain()
        assert acked == []
        first.set_result(None)
        await acks.drain()
        assert acked == ["m0", "m1", "m2"] and acks.pending() == 0

    run(scenario())


def test_a_message_without_writes_or_pending_acks_is_at_once() -> None:
    async def scenario() -> None:
        acked, ack = recorder()
        acks = AckAfterDelivery(ack)
        await acks.after([], ["m0"])
        assert acked == ["m0"]
        await acks.after([], [])
        assert acks.pending() == 0

    run(scenario())


def test_a_failed_write_stops_the_acks() -> None:
    async def scenario() -> None:
        acked, ack = recorder()
        future = asyncio.get_running_loop().create_future()
        acks = AckAfterDelivery(ack)
        await acks.after([future], ["m0"])
        future.set_exception(RuntimeError("broker gone"))
        with pytest.raises(ChangelogWriteFailed, match="broker gone"):
            await acks.drain()
        assert acked == []

    run(scenario())


def test_the_queue_is_bounded_by_waiting_for_the_oldest_write() -> None:
    async def scenario() -> None:
        acked, ack = recorder()
        loop = asyncio.get_running_loop()
        acks = AckAfterDelivery(ack, max_pending=2)
        futures = [loop.create_future() for _ in range(3)]
        for i in range(2):
            await acks.after([futures[i]], [i])
        loop.call_later(0.01, futures[0].set_result, None)
        await acks.after([futures[2]], [2])  # over the bound: waits until m0 is delivered
        assert acked == [0] and acks.pending() == 2

    run(scenario())
