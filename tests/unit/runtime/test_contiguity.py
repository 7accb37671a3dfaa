"""Contiguity: each partition's offsets reach the agent once, in order, holes filled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from stream.runtime.contiguity import Contiguity, Record, RefetchedEvent


@dataclass(frozen=True)
class TP:
    """Like Faust's TP: a partition of a topic, hashable."""

    topic: str
    partition: int


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class FakeReader:
    starts: dict[tuple[str, int], int]
    log: dict[tuple[str, int], dict[int, bytes]] = field(default_factory=dict)
    calls: list[Any] = field(default_factory=list)

    def start_offsets(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        self.calls.append(("start", tps))
        return {tp: self.starts[tp] for tp in tps}

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        self.calls.append(("read", topic, partition, start, end))
        records = self.log.get((topic, partition), {})
        return [Record(o, b"k", records[o]) for o in range(start, end) if o in records]


def admit(guard: Contiguity, msg: Msg) -> list[RefetchedEvent] | None:
    return asyncio.run(guard.admit(msg))


def test_in_order_offsets_pass_and_the_start_is_asked_once() -> None:
    reader = FakeReader({("p", 0): 5})
    guard = Contiguity(reader, {"p"})
    assert [admit(guard, Msg("p", 0, o)) for o in (5, 6, 7)] == [[], [], []]
    assert reader.calls == [("start", [("p", 0)])]


def test_offsets_below_the_committed_one_are_skipped() -> None:
    """Faust can deliver from position 0 before its seek to the committed offset lands."""
    guard = Contiguity(FakeReader({("p", 0): 3}), {"p"})
    assert admit(guard, Msg("p", 0, 0)) is None
    assert admit(guard, Msg("p", 0, 2)) is None
    assert admit(guard, Msg("p", 0, 3)) == []
    assert admit(guard, Msg("p", 0, 3)) is None  # the same message delivered twice
    assert guard.counters["redelivered_skipped"] == 3


def test_a_hole_is_read_from_the_broker_and_comes_first_in_order() -> None:
    reader = FakeReader({("p", 1): 0}, log={("p", 1): {0: b"a", 1: b"b", 2: b"c"}})
    guard = Contiguity(reader, {"p"})
    before = admit(guard, Msg("p", 1, 3))  # offsets 0..2 never handed over
    assert before is not None
    assert [(e.message.offset, e.value) for e in before] == [(0, b"a"), (1, b"b"), (2, b"c")]
    assert all(e.message.tp == TP("p", 1) and e.message.key == b"k" for e in before)
    assert reader.calls[-1] == ("read", "p", 1, 0, 3)
    assert admit(guard, Msg("p", 1, 4)) == []
    assert guard.counters["refetched"] == 3


def test_a_hole_with_no_records_in_it_is_accepted() -> None:
    """Transaction markers and compaction leave offsets without records."""
    reader = FakeReader({("p", 0): 0}, log={("p", 0): {}})
    guard = Contiguity(reader, {"p"})
    assert admit(guard, Msg("p", 0, 0)) == []
    assert admit(guard, Msg("p", 0, 2)) == []
    assert admit(guard, Msg("p", 0, 3)) == []


def test_other_topics_are_not_checked() -> None:
    reader = FakeReader({})
    guard = Contiguity(reader, {"p"})
    assert admit(guard, Msg("ticks", 0, 9)) == []
    assert admit(guard, Msg("ticks", 0, 2)) == []
    assert reader.calls == []


def test_a_revoked_partition_asks_its_start_again() -> None:
    reader = FakeReader({("p", 0): 0})
    guard = Contiguity(reader, {"p"})
    assert admit(guard, Msg("p", 0, 0)) == []
    guard.forget([TP("p", 0)])
    reader.starts[("p", 0)] = 7  # committed by whoever owned it meanwhile
    assert admit(guard, Msg("p", 0, 1)) is None
    assert admit(guard, Msg("p", 0, 7)) == []
    assert [c[0] for c in reader.calls] == ["start", "start"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_hole_at_the_end_is_read_once_the_partition_was_quiet() -> None:
    """No later message reveals it: Faust handed over offset 0 and none of 1..3."""
    clock = Clock()
    reader = FakeReader({("p", 0): 0}, log={("p", 0): {1: b"b", 2: b"c", 3: b"d"}})
    guard = Contiguity(reader, {"p"}, quiet_s=5, clock=clock)
    tp = TP("p", 0)
    assert admit(guard, Msg("p", 0, 0)) == []
    assert asyncio.run(guard.catch_up(tp, 4, 4)) == []  # not quiet long enough yet
    clock.now += 6
    assert asyncio.run(guard.catch_up(tp, 4, 3)) == []  # Faust has not taken it all: behind
    assert asyncio.run(guard.catch_up(tp, 4, None)) == []
    events = asyncio.run(guard.catch_up(tp, 4, 4))
    assert [(e.message.offset, e.value) for e in events] == [(1, b"b"), (2, b"c"), (3, b"d")]
    assert asyncio.run(guard.catch_up(tp, 4, 4)) == []  # read: nothing more to do
    # Faust's late copies are second deliveries now.
    assert admit(guard, Msg("p", 0, 2)) is None
    assert admit(guard, Msg("p", 0, 4)) == []


def test_a_partition_none_of_whose_messages_arrived_is_read_from_its_start() -> None:
    """Seen live: the client returned all eight messages of a partition to Faust after a
    rebalance, Faust discarded them, and the agent never saw that partition at all."""
    clock = Clock()
    reader = FakeReader({("p", 0): 3}, log={("p", 0): {o: bytes([o]) for o in range(8)}})
    guard = Contiguity(reader, {"p"}, quiet_s=5, clock=clock)
    tp = TP("p", 0)
    assert asyncio.run(guard.catch_up(tp, 8, 8)) == []  # start asked (committed: 3)
    clock.now += 6
    events = asyncio.run(guard.catch_up(tp, 8, 8))
    assert [e.message.offset for e in events] == [3, 4, 5, 6, 7]
    assert guard.counters["refetched"] == 5
    assert guard.counters["tail_reads"] == 1


def test_catch_up_reads_at_most_max_read_and_never_what_is_caught_up() -> None:
    clock = Clock()
    reader = FakeReader({("p", 0): 10}, log={("p", 0): {o: b"x" for o in range(10, 30)}})
    guard = Contiguity(reader, {"p"}, quiet_s=1, max_read=5, clock=clock)
    tp = TP("p", 0)
    assert asyncio.run(guard.catch_up(tp, 10, 10)) == []  # start asked; nothing beyond it
    clock.now += 2
    assert asyncio.run(guard.catch_up(tp, 10, 10)) == []
    assert [e.message.offset
            for e in asyncio.run(guard.catch_up(tp, 30, 30))] == [10, 11, 12, 13, 14]
    assert asyncio.run(guard.catch_up(TP("ticks", 0), 99, 99)) == []
    assert asyncio.run(guard.catch_up(tp, None, 30)) == []


def test_expected_is_unknown_until_a_partition_starts_then_follows_it() -> None:
    """The agent's backlog check compares the partition's end with this: unknown (None)
    must read as 'not proven quiet', and it must advance past every admitted message."""
    guard = Contiguity(FakeReader({("p", 0): 3}), {"p"})
    tp = TP("p", 0)
    assert guard.expected(tp) is None
    admit(guard, Msg("p", 0, 3))
    assert guard.expected(tp) == 4


def test_a_tail_longer_than_max_read_is_read_in_turns_without_waiting_again() -> None:
    """Faust dropped 20 messages; 5 are read per turn, the quiet wait only before the first;
    once Faust hands a message over again, a later tail waits for quiet again."""
    clock = Clock()
    reader = FakeReader({("p", 0): 0}, log={("p", 0): {o: b"x" for o in range(40)}})
    guard = Contiguity(reader, {"p"}, quiet_s=5, max_read=5, clock=clock)
    tp = TP("p", 0)
    assert asyncio.run(guard.catch_up(tp, 20, 20)) == []  # start asked; not quiet yet
    clock.now += 6
    turns = []
    while events := asyncio.run(guard.catch_up(tp, 20, 20)):
        turns.append([e.message.offset for e in events])
    assert turns == [list(range(k, k + 5)) for k in (0, 5, 10, 15)]  # no wait in between
    assert admit(guard, Msg("p", 0, 20)) == []
    assert admit(guard, Msg("p", 0, 21)) == []
    assert asyncio.run(guard.catch_up(tp, 30, 30)) == []  # a new tail: quiet first
    clock.now += 6
    assert [e.message.offset for e in asyncio.run(guard.catch_up(tp, 30, 30))] == [
        22, 23, 24, 25, 26]
