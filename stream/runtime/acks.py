"""Acknowledge Faust events strictly in offset order, per topic partition.

Our agents hold some messages unacked until what they fed is safely downstream, and ack
others at once. faust-streaming 0.15.3 commits the first run of consecutive *acked* offsets
it finds (``Consumer._new_offset``): it skips the check for an unacked message at the head
when nothing was committed yet, and misses a head gap of exactly one message otherwise. An
out-of-order ack can therefore commit past a message still waiting, which a crash then loses
(our SIGKILL test found exactly this). Acking only a prefix of each partition's messages, in
order, keeps Faust's arithmetic correct.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Ack = Callable[[Any], Awaitable[Any]]


class InOrderAcks:
    """Register every event when it arrives; ``done`` acks the longest ready prefix."""

    def __init__(self, ack: Ack) -> None:
        self._ack = ack
        self._queues: dict[Any, deque[list[Any]]] = {}
        self._slots: dict[tuple[Any, int], list[Any]] = {}

    def register(self, event: Any) -> None:
        message = event.message
        slot = [event, False]
        self._queues.setdefault(message.tp, deque()).append(slot)
        self._slots[(message.tp, message.offset)] = slot

    async def done(self, events: Iterable[Any]) -> None:
        """Mark ``events`` processed; ack every event whose predecessors are all processed."""
        touched = set()
        for event in events:
            key = (event.message.tp, event.message.offset)
            slot = self._slots.get(key)
            if slot is not None and slot[0] is event:  # not a stale one from before a revoke
                slot[1] = True
                touched.add(event.message.tp)
        for tp in touched:
            queue = self._queues[tp]
            while queue and queue[0][1]:
                event = queue.popleft()[0]
                del self._slots[(tp, event.message.offset)]
                await self._ack(event)

    def forget(self, tps: Iterable[Any]) -> None:
        """Partitions revoked: their unacked messages will be read again by the next owner."""
        for tp in tps:
            for slot in self._queues.pop(tp, deque()):
                self._slots.pop((tp, slot[0].message.offset), None)

    def pending(self) -> int:
        return len(self._slots)
