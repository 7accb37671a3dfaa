"""Acks go to Faust only as an in-order prefix per partition (stream/runtime/acks.py: why)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from stream.runtime.acks import InOrderAcks


@dataclass(frozen=True)
class Message:
    tp: str
    offset: int


@dataclass(frozen=True)
class Event:
    message: Message


def test_out_of_order_completion_acks_in_order() -> None:
    acked: list[tuple[str, int]] = []

    async def ack(event: Any) -> None:
        acked.append((event.message.tp, event.message.offset))

    async def scenario() -> None:
        acks = InOrderAcks(ack)
        events = [Event(Message("a", i)) for i in range(5)] + [Event(Message("b", 0))]
        for event in events:
            acks.register(event)
        await acks.done([events[1], events[2], events[5]])  # 0 still waits: only b acks
        assert acked == [("b", 0)]
        await acks.done([events[0]])
        assert acked == [("b", 0), ("a", 0), ("a", 1), ("a", 2)]
        acks.forget({"a"})  # revoked: 3 and 4 are left to the next owner
        await acks.done([events[3], events[4]])
        assert acked[-1] == ("a", 2)
        assert acks.pending() == 0

    asyncio.run(scenario())


def test_a_stale_event_from_before_a_revoke_does_not_ack_its_successor() -> None:
    """After a revoke and re-assignment the same offset arrives as a new event; finishing
    the old one (queued before the revoke) must not ack the new one, still in progress."""
    acked: list[int] = []

    async def ack(event: Any) -> None:
        acked.append(event.message.offset)

    async def scenario() -> None:
        acks = InOrderAcks(ack)
        old = Event(Message("a", 0))
        acks.register(old)
        acks.forget({"a"})
        new = Event(Message("a", 0))
        acks.register(new)
        await acks.done([old])
        assert acked == []
        await acks.done([new])
        assert acked == [0]

    asyncio.run(scenario())
