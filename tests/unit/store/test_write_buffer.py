"""The write buffer with a failing sink: nothing lost, order kept, backpressure, resume."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.errors import StoreError
from stream.store.buffer import Backoff, WriteBuffer

Row = tuple[Any, ...]


class FlakySink:
    """Fails the first ``failures`` calls, or while ``down`` is set; records what it took."""

    def __init__(self, failures: int = 0) -> None:
        self.failures_left = failures
        self.down = threading.Event()
        self.calls = 0
        self.taken: list[tuple[str, Row]] = []
        self.batches: list[int] = []

    def __call__(self, table: str, rows: Sequence[Row]) -> None:
        self.calls += 1
        if self.down.is_set():
            raise ConnectionRefusedError("server down")
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionResetError("flaky network")
        self.taken.extend((table, row) for row in rows)
        self.batches.append(len(rows))


def make(sink: Callable[[str, Sequence[Row]], None], **kw: Any) -> WriteBuffer:
    options: dict[str, Any] = {"max_rows": 100, "batch_size": 10, "flush_interval_s": 0.02,
                               "backoff": Backoff(0.005, 0.02)}  # fmt: skip
    return WriteBuffer(sink, **(options | kw)).start()


def rows(start: int, n: int) -> list[Row]:
    return [(i, f"r{i}") for i in range(start, start + n)]


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_backoff_doubles_up_to_the_cap() -> None:
    b = Backoff(0.5, 30.0)
    assert [b.delay(n) for n in (1, 2, 3, 4, 7, 8, 100)] == [0.5, 1, 2, 4, 30, 30, 30]


def test_batches_by_size_and_by_interval() -> None:
    sink = FlakySink()
    buf = make(sink, batch_size=10, flush_interval_s=60)
    buf.put("t", rows(0, 25))
    wait_until(lambda: len(sink.taken) == 20)  # two full batches go at once
    time.sleep(0.05)
    assert sink.batches == [10, 10]  # the last 5 wait for the interval, or a flush
    buf.flush(timeout=2)
    assert sink.batches == [10, 10, 5]
    buf.close()


def test_interval_sends_a_partial_batch() -> None:
    sink = FlakySink()
    buf = make(sink, flush_interval_s=0.05)
    buf.put("t", rows(0, 3))
    wait_until(lambda: len(sink.taken) == 3)
    buf.close()


def test_sink_failing_n_times_loses_nothing_and_keeps_order() -> None:
    sink = FlakySink(failures=7)
    buf = make(sink)
    for start in range(0, 60, 6):
        buf.put("a" if start % 12 else "b", rows(start, 6))
    buf.flush(timeout=5)
    assert sink.calls >= 7 + 1
    assert [row[0] for _, row in sink.taken] == list(range(60))
    assert [t for t, _ in sink.taken] == ["b" if (i // 6) % 2 == 0 else "a" for i in range(60)]
    assert buf.failures == 0 and buf.rows_written == 60 and buf.pending_rows == 0
    buf.close()


def test_full_buffer_blocks_put_until_the_server_returns() -> None:
    sink = FlakySink()
    sink.down.set()
    buf = make(sink, max_rows=20, batch_size=5)
    buf.put("t", rows(0, 20))
    with pytest.raises(StoreError, match="buffer full: 20 rows not yet stored"):
        buf.put("t", rows(20, 1), timeout=0.1)
    done = threading.Event()

    def producer() -> None:
        buf.put("t", rows(20, 10))
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    time.sleep(0.1)
    assert not done.is_set() and buf.pending_rows == 20  # paused, nothing dropped
    sink.down.clear()
    assert done.wait(5)
    buf.flush(timeout=5)
    assert [row[0] for _, row in sink.taken] == list(range(30))
    buf.close()


def test_wait_for_capacity_pauses_an_asyncio_stream_and_resumes() -> None:
    sink = FlakySink()
    sink.down.set()
    buf = make(sink, max_rows=10, batch_size=5)

    async def stream() -> tuple[list[str], int]:
        events: list[str] = []
        ticks = 0

        async def ticker() -> None:  # proves the event loop keeps running while paused
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        tick_task = asyncio.ensure_future(ticker())
        for start in range(0, 30, 5):
            waiter = asyncio.ensure_future(buf.wait_for_capacity(5))
            await asyncio.sleep(0.05)
            if not waiter.done():
                events.append(f"paused at {start}")
                sink.down.clear()  # the server comes back
            await asyncio.wait_for(waiter, timeout=5)
            buf.put("t", rows(start, 5))
            events.append(f"put {start}")
        tick_task.cancel()
        return events, ticks

    events, ticks = asyncio.run(stream())
    assert events[:3] == ["put 0", "put 5", "paused at 10"]
    assert ticks > 20
    buf.flush(timeout=5)
    assert [row[0] for _, row in sink.taken] == list(range(30))
    buf.close()


def test_flush_times_out_with_the_reason_while_down() -> None:
    sink = FlakySink()
    sink.down.set()
    buf = make(sink)
    buf.put("t", rows(0, 3))
    with pytest.raises(StoreError, match=r"flush timed out: 3 rows.*server down"):
        buf.flush(timeout=0.1)
    sink.down.clear()
    buf.flush(timeout=5)
    assert len(sink.taken) == 3
    buf.close()


def test_close_drains_and_refuses_further_puts() -> None:
    sink = FlakySink(failures=2)
    buf = make(sink, flush_interval_s=60)
    buf.put("t", rows(0, 7))
    buf.close(timeout=5)
    assert len(sink.taken) == 7
    with pytest.raises(StoreError, match="closed"):
        buf.put("t", rows(7, 1))


def test_close_reports_rows_it_could_not_store() -> None:
    sink = FlakySink()
    sink.down.set()
    buf = make(sink)
    buf.put("t", rows(0, 4))
    with pytest.raises(StoreError, match="4 rows not yet stored"):
        buf.close(timeout=0.1)


def test_a_put_larger_than_the_buffer_goes_through_in_parts() -> None:
    sink = FlakySink()
    buf = make(sink, max_rows=10, batch_size=4)
    buf.put("t", rows(0, 35))
    buf.flush(timeout=5)
    assert [row[0] for _, row in sink.taken] == list(range(35))
    assert max(sink.batches) <= 4
    buf.close()


@settings(max_examples=40, deadline=None)
@given(
    puts=st.lists(st.tuples(st.sampled_from("ab"), st.integers(1, 25)), min_size=1, max_size=12),
    failures=st.lists(st.booleans(), max_size=30),
    batch_size=st.integers(1, 12),
    max_rows=st.integers(1, 40),
)
def test_any_failure_pattern_delivers_every_row_once_in_order(
    puts: list[tuple[str, int]], failures: list[bool], batch_size: int, max_rows: int
) -> None:
    pattern = iter(failures)
    taken: list[tuple[str, Row]] = []

    def sink(table: str, rows: Sequence[Row]) -> None:
        if next(pattern, False):
            raise ConnectionError("injected")
        taken.extend((table, row) for row in rows)

    buf = make(sink, batch_size=batch_size, max_rows=max_rows, backoff=Backoff(0.0005, 0.001))
    expected: list[tuple[str, Row]] = []
    n = 0
    for table, count in puts:
        chunk = rows(n, count)
        n += count
        buf.put(table, chunk, timeout=10)
        expected.extend((table, row) for row in chunk)
    buf.close(timeout=10)
    assert taken == expected
