"""Ingest: decode and validate every message; dead-letter what fails; never raise on data.

A dead-lettered record keeps the original bytes as its value (for a batch message, the failing
element re-encoded), and says why in headers, so that nothing is lost and a fixed producer can
replay it:

==================  ===============================================================
header              value
==================  ===============================================================
``reason``          one of :data:`stream.events.REASONS`
``detail``          a human-readable sentence
``source-topic``    topic of the original message
``source-partition`` its partition
``source-offset``   its offset
``batch-index``     index inside a batch message (absent for a whole message)
``original-size``   byte size of the original value
``truncated``       ``"1"`` when the value kept is only the first ``DLQ_MAX_VALUE`` bytes
==================  ===============================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from stream.events import Decoded, EventKind, Rejected, decode_message

#: Largest value copied to the dead-letter topic (the broker refuses messages above ~1 MiB).
DLQ_MAX_VALUE: Final = 512 * 1024


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: enough to find it again in Kafka."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record for the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(slots=True)
class IngestStats:
    """Counters the worker exposes on ``/stats``: messages, valid events, rejects by reason."""

    messages: Counter[str] = field(default_factory=Counter)
    valid: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"messages": dict(self.messages), "valid": dict(self.valid),
                "rejected": dict(self.rejected)}


def dead_letter(rejected: Rejected, source: Source, key: bytes | None) -> DeadLetter:
    """The dead-letter record for one rejected message or batch element."""
    headers = [
        ("reason", rejected.reason.encode()),
        ("detail", rejected.detail.encode("utf-8", "replace")[:1024]),
        ("source-topic", source.topic.encode()),
        ("source-partition", str(source.partition).encode()),
        ("source-offset", str(source.offset).encode()),
        ("original-size", str(len(rejected.raw)).encode()),
    ]
    if rejected.index is not None:
        headers.append(("batch-index", str(rejected.index).encode()))
    value = rejected.raw
    if len(value) > DLQ_MAX_VALUE:
        value = value[:DLQ_MAX_VALUE]
        headers.append(("truncated", b"1"))
    return DeadLetter(key=key, value=value, headers=headers)


Sender = Callable[[DeadLetter], Awaitable[None]]


class Ingest:
    """Decodes one message, counts, and hands dead letters to ``send`` (an async callable)."""

    def __init__(self, kinds: dict[str, EventKind], max_bytes: int, send: Sender) -> None:
        self._kinds = kinds
        self._max_bytes = max_bytes
        self._send = send
        self.stats = IngestStats()

    def kind_of(self, topic: str) -> EventKind:
        return self._kinds[topic]

    async def handle(self, value: bytes | None, key: bytes | None, source: Source) -> Decoded:
        """Decode and validate; dead-letter the rejects; return the valid events."""
        kind = self._kinds[source.topic]
        decoded = decode_message(value, kind, self._max_bytes)
        self.stats.messages[source.topic] += 1
        if decoded.valid:
            self.stats.valid[kind] += len(decoded.valid)
        for rejected in decoded.rejected:
            self.stats.rejected[rejected.reason] += 1
            await self._send(dead_letter(rejected, source, key))
        return decoded
