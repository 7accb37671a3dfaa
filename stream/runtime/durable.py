"""Ack a message only once the table writes it caused are stored in Kafka.

Faust commits the offsets of acked messages every few seconds, after flushing its producer so
that table changelogs are durable first. That flush is not reliable: it gives up when one
message takes more than 0.1 s to hand over, and the last message it took may still be on its
way (see :mod:`stream.runtime.faust_fixes`). Under load, offsets were committed while a changelog
write was still queued; a SIGKILL then lost that write, and a window was rebuilt from only
part of its events after the restart.

So we do not rely on it. Every table write of an agent hands us its changelog future
(:class:`TrackedTable`); after each message the agent queues the futures created while
processing it with the events that message makes safe to ack (:class:`AckAfterDelivery`).
Entries are acked strictly first in, first out, once all their futures (and those of every
earlier entry) are delivered to the broker (``acks=all``). An ack therefore always follows
the delivery of every write made before it, whichever message made it: a prediction acked
when its window closes waits for its own join-table write from long before, too.

Nothing here blocks the agent while writes are in flight, unless the queue grows past its
bound (then it waits for the oldest entry: backpressure, not loss).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust

from stream.errors import StreamError

Ack = Callable[[Iterable[Any]], Awaitable[None]]


class ChangelogWriteFailed(StreamError):
    """A table's changelog write failed after the producer's retries: the state it carried
    is not durable, so the messages that led to it must not be acked. The agent raises
    instead of acking: commits stop at those messages, and a restarted worker reads them
    again: the agent's failure stops the worker (see ``CRASH`` in :mod:`stream.runtime.app`)."""


class WriteLog:
    """Changelog futures of one agent's tables, since the agent last took them."""

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[Any]] = []

    def add(self, future: asyncio.Future[Any]) -> None:
        self._futures.append(future)

    def take(self) -> list[asyncio.Future[Any]]:
        futures, self._futures = self._futures, []
        return futures


class TrackedTable(faust.Table[Any, Any]):
    """A plain Faust table whose changelog writes are recorded in a :class:`WriteLog`."""

    writes: WriteLog

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self.writes.add(future)
        return future


def tracked_table(app: faust.App, name: str, writes: WriteLog, **kwargs: Any) -> TrackedTable:
    """Define a :class:`TrackedTable` on ``app`` (as ``app.Table`` does for plain ones)."""
    table = TrackedTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    table.writes = writes
    app.tables.add(table)
    return table


class AckAfterDelivery:
    """First in, first out: ack each entry's events once its writes and all earlier
    entries' writes are delivered."""

    def __init__(self, ack: Ack, max_pending: int = 1_000) -> None:
        self._ack = ack
        self._max_pending = max_pending
        self._queue: deque[tuple[list[asyncio.Future[Any]], list[Any]]] = deque()

    async def after(self, futures: list[asyncio.Future[Any]], events: list[Any]) -> None:
        """Queue ``events`` to be acked once ``futures`` (and all before them) are done."""
        if futures or events:
            self._queue.append((futures, events))
        await self.drain()
        while len(self._queue) > self._max_pending:
            await asyncio.wait(self._queue[0][0])  # not empty: drain took those
            await self.drain()

    async def drain(self) -> None:
        """Ack the entries at the head whose writes are all delivered."""
        while self._queue and all(f.done() for f in self._queue[0][0]):
            futures, events = self._queue.popleft()
            for future in futures:
                error = "cancelled" if future.cancelled() else future.exception()
                if error is not None:
                    raise ChangelogWriteFailed(f"table changelog write failed: {error!r}")
            if events:
                await self._ack(events)

    def pending(self) -> int:
        return len(self._queue)
