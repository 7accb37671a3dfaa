"""Every offset of a partition reaches the agent, once and in order, whatever Faust drops.

faust-streaming 0.15.3 can fail to hand a fetched message to the agent without a word: we saw
it right after a restart, when the fetcher (already running to restore a table) reads the
stream partitions from position 0 while Faust seeks them to the committed offsets, and the
first message of three partitions never arrived. Other drop paths are known (a batch whose
partition is paused meanwhile, a fetch that straddles a rebalance). A dropped message is not
re-read, and once the agent acks the messages after it, Faust commits past it too
(``Consumer._new_offset`` counts the first run of consecutive acked offsets, wherever it
starts): the message is lost for good. Our SIGKILL test lost 25-75 events of a window so.

So the agent checks each message's offset against the next one it expects:

- the same offset: process it;
- lower: a second delivery of a message already processed (or committed): skip it;
- higher: a hole. The missing offsets are read from the broker with a separate consumer
  (:class:`BrokerReader`) and processed first, in order, then the message. An offset the
  broker has no record for (a transaction marker, compaction) is simply not there to read.

A hole at the end of what was produced shows no later message. We caught one live: after a
start-up rebalance the Kafka client (aiokafka) had fetched and returned all eight messages of
two prediction partitions, but Faust's ``getmany`` discarded them (it drops the rest of a
fetched batch when the generation changes or a partition is not active at that instant) and
none ever reached the agent. So the agent also calls :meth:`Contiguity.catch_up` on every
tick: when the client's position has reached the partition's high watermark, but the agent
still expects an earlier offset and nothing arrived on that partition for ``quiet_s``, the rest
is read from the broker too. If Faust was only slow, its late copies are then skipped as
second deliveries.

Where a partition starts after an assignment is asked of the broker: the group's committed
offset, or the partition's first offset if nothing was committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from stream.errors import StreamError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class RefetchedMessage:
    """Looks like a Faust message as far as our agents use one."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    tp: Any


@dataclass(frozen=True, slots=True)
class RefetchedEvent:
    """A message read by :class:`BrokerReader`; acking it is a no-op (Faust never saw it,
    and the commit of the messages after it covers it)."""

    message: RefetchedMessage
    value: bytes | None


class Reader(Protocol):
    def start_offsets(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]: ...

    def end_offset(self, topic: str, partition: int) -> int: ...


class HoleNotReadable(StreamError):
    """The broker did not answer in time (committed offsets, or the missing records);
    processing the message after a hole would let Faust commit past it, so the agent stops
    instead."""


class BrokerReader:
    """A confluent-kafka consumer beside Faust's that never joins the group: it asks for the
    group's committed offsets and reads given offset ranges. One call at a time (a lock),
    from a worker thread (the calls block)."""

    def __init__(self, conf: dict[str, Any], group: str, timeout_s: float = 30.0) -> None:
        self._conf = {**conf, "group.id": group, "enable.auto.commit": False,
                      "enable.partition.eof": True, "auto.offset.reset": "earliest"}
        self._consumer: Consumer | None = None  # connected on first use
        self._lock = threading.Lock()
        self._timeout = timeout_s

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._conf)
        return self._consumer

    def start_offsets(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The group's committed offset of each partition, else its first offset."""
        with self._lock:
            consumer = self._client()
            deadline = time.monotonic() + self._timeout
            while True:  # the group coordinator can be loading or moving: retry
                try:
                    parts = consumer.committed([TopicPartition(t, p) for t, p in tps],
                                               timeout=self._timeout)
                    break
                except KafkaException as exc:
                    if time.monotonic() > deadline:
                        raise HoleNotReadable(f"committed offsets of {tps}: {exc}") from exc
                    time.sleep(0.2)
            out: dict[tuple[str, int], int] = {}
            for part in parts:
                if part.error is None and part.offset >= 0:
                    out[(part.topic, part.partition)] = part.offset
                else:
                    low, _ = consumer.get_watermark_offsets(
                        TopicPartition(part.topic, part.partition), timeout=self._timeout)
                    out[(part.topic, part.partition)] = low
            return out

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """The records with ``start <= offset < end``."""
        with self._lock:
            consumer = self._client()
            consumer.assign([TopicPartition(topic, partition, start)])
            out: list[Record] = []
            try:
                deadline = time.monotonic() + self._timeout
                while True:
                    if time.monotonic() > deadline:
                        raise HoleNotReadable(
                            f"{topic}[{partition}] offsets {start}..{end - 1}: read "
                            f"{len(out)} records in {self._timeout} s")
                    msg = consumer.poll(0.5)
                    if msg is None:
                        continue
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            break
                        continue  # transient; retried until the deadline
                    offset = msg.offset()
                    if offset is None or offset >= end:
                        break
                    out.append(Record(offset, msg.key(), msg.value()))
                    if offset == end - 1:
                        break
            finally:
                consumer.unassign()
            return out

    def end_offset(self, topic: str, partition: int) -> int:
        """The partition's end (high watermark) as the broker says now, not as the last fetch
        saw it."""
        with self._lock:
            _, high = self._client().get_watermark_offsets(
                TopicPartition(topic, partition), timeout=self._timeout, cached=False)
            return int(high)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


class Contiguity:
    """Per partition, the next offset the agent expects (see the module docstring)."""

    def __init__(self, reader: Reader, topics: set[str], quiet_s: float = 5.0,
                 max_read: int = 500, clock: Any = time.monotonic) -> None:
        self._reader = reader
        self._topics = topics
        self._quiet_s = quiet_s
        self._max_read = max_read
        self._clock = clock
        self._next: dict[Any, int] = {}
        self._seen: dict[Any, float] = {}  # when the partition last had a message
        #: Partitions whose tail is being read from the broker ``max_read`` at a time: Faust
        #: dropped more than that; the rest is read without waiting ``quiet_s`` again.
        self._draining: set[Any] = set()
        self.counters: Counter[str] = Counter()

    async def start(self, tp: Any, topic: str, partition: int) -> int:
        """The next offset the agent expects on ``tp``; the group's committed offset (read
        from the broker) if nothing came since the assignment."""
        expected = self._next.get(tp)
        if expected is None:
            starts = await asyncio.to_thread(self._reader.start_offsets, [(topic, partition)])
            expected = self._next[tp] = starts[(topic, partition)]
            self._seen[tp] = self._clock()
        return expected

    async def _read(self, tp: Any, topic: str, partition: int, start: int,
                    end: int, at_tail: bool = False) -> list[RefetchedEvent]:
        records = await asyncio.to_thread(self._reader.read, topic, partition, start, end)
        log.warning("%s[%d]: offsets %d..%d were not handed over%s; read %d of them "
                    "from the broker", topic, partition, start, end - 1,
                    f" and nothing came for {self._quiet_s:.0f} s" if at_tail else "",
                    len(records))
        self.counters["refetched"] += len(records)
        if at_tail:
            self.counters["tail_reads"] += 1
        return [RefetchedEvent(RefetchedMessage(topic, partition, r.offset, r.key, tp), r.value)
                for r in records]

    async def admit(self, message: Any) -> list[RefetchedEvent] | None:
        """None: skip ``message`` (processed before). Else the events to process first,
        in order (usually none), then ``message`` itself."""
        tp = message.tp
        if message.topic not in self._topics:
            return []
        expected = await self.start(tp, message.topic, message.partition)
        if message.offset < expected:
            self.counters["redelivered_skipped"] += 1
            return None
        missing: list[RefetchedEvent] = []
        if message.offset > expected:
            missing = await self._read(tp, message.topic, message.partition, expected,
                                       message.offset)
        self._next[tp] = message.offset + 1
        self._seen[tp] = self._clock()
        self._draining.discard(tp)  # Faust hands this partition over again
        return missing

    async def catch_up(self, tp: Any, highwater: int | None,
                       taken_to: int | None) -> list[RefetchedEvent]:
        """On a tick: the messages up to ``highwater`` (the partition's end, as last seen)
        that Faust's fetcher has taken from the Kafka client (``taken_to``: the client's
        position, the offset after the last record it returned) but that did not reach the
        agent within ``quiet_s`` (at most ``max_read`` at a time). Messages Faust has not
        taken yet are left to Faust: reading ahead of it would let labels run ahead of their
        predictions. Do not call it for a partition paused on purpose.

        A tail longer than ``max_read`` is read in turns without waiting ``quiet_s`` between
        them (one-event messages: Faust dropped 3,444 of a partition after a start-up
        rebalance, and a wait per 500 made them take 35 s); a message Faust hands over ends
        that."""
        topic, partition = tp.topic, tp.partition
        if topic not in self._topics or highwater is None or taken_to is None:
            return []
        expected = await self.start(tp, topic, partition)
        if highwater <= expected or taken_to < highwater:
            self._draining.discard(tp)
            return []
        if tp not in self._draining and self._clock() - self._seen[tp] < self._quiet_s:
            return []
        end = min(highwater, expected + self._max_read)
        missing = await self._read(tp, topic, partition, expected, end, at_tail=True)
        self._next[tp] = end  # offsets in between without a record have none to read
        self._seen[tp] = self._clock()
        if end < highwater:
            self._draining.add(tp)
        else:
            self._draining.discard(tp)
        return missing

    def expected(self, tp: Any) -> int | None:
        """The next offset the agent expects on ``tp`` (None: not known since the assignment):
        everything before it was processed, or read from the broker to be."""
        return self._next.get(tp)

    def guards(self, topic: str) -> bool:
        """Whether this topic's partitions are checked (the others pass unchecked)."""
        return topic in self._topics

    def positions(self) -> dict[Any, tuple[int, float]]:
        """Per partition: the next offset expected and the seconds since it last had a
        message (for ``/stats``: a partition stuck behind its high watermark shows here)."""
        now = self._clock()
        return {tp: (n, round(now - self._seen.get(tp, now), 1)) for tp, n in self._next.items()}

    def forget(self, tps: Any) -> None:
        """Revoked partitions: where they start is asked again after the next assignment."""
        for tp in tps:
            self._next.pop(tp, None)
            self._seen.pop(tp, None)
            self._draining.discard(tp)
