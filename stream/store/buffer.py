"""A bounded write buffer with a background sender: batching, retries, backpressure.

Rows wait here, in arrival order, until a batch is full, ``flush_interval_s`` has passed,
or someone flushes. A background thread hands batches to ``sink(table, rows)``; when the
sink fails (server down, network cut) the same batch is retried with exponential backoff
and nothing behind it moves, so no row is lost or reordered. Rows leave the buffer only
once the sink has taken them; when ``max_rows`` are waiting, ``put`` blocks, and
``wait_for_capacity`` (awaitable) tells an asyncio stream to stop consuming until the store
is back. No engine here: the sink is a plain callable, which keeps this testable alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.errors import StoreError

log = logging.getLogger(__name__)

Sink = Callable[[str, Sequence[tuple[Any, ...]]], None]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``initial_s * 2**(n-1)``, at most ``max_s``."""

    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.initial_s * 2 ** min(failures - 1, 32)))


@dataclass(slots=True)
class _Chunk:
    table: str
    rows: list[tuple[Any, ...]]
    since: float = field(default=0.0)


class WriteBuffer:
    """FIFO of rows per call order; ``start()`` the sender, ``close()`` to drain and stop."""

    def __init__(
        self,
        sink: Sink,
        *,
        max_rows: int,
        batch_size: int,
        flush_interval_s: float,
        backoff: Backoff,
        name: str = "store",
    ) -> None:
        if max_rows < 1 or batch_size < 1:
            raise ValueError("max_rows and batch_size must be positive")
        self._sink = sink
        self.max_rows = max_rows
        self.batch_size = min(batch_size, max_rows)
        self.flush_interval_s = flush_interval_s
        self.backoff = backoff
        self._chunks: deque[_Chunk] = deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._flush_requests = 0
        self._closing = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self.failures = 0  # consecutive sink failures; 0 when the last attempt succeeded
        self.last_error: BaseException | None = None
        self.rows_written = 0

    # -- producer side --------------------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        return self._pending

    def start(self) -> WriteBuffer:
        self._thread.start()
        return self

    def has_capacity(self, rows: int = 1) -> bool:
        return self._pending == 0 or self._pending + min(rows, self.max_rows) <= self.max_rows

    def put(
        self, table: str, rows: Sequence[tuple[Any, ...]], timeout: float | None = None
    ) -> None:
        """Append rows; blocks while the buffer is full (raises StoreError after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        rows = list(rows)
        step = self.max_rows
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            with self._cond:
                while not self.has_capacity(len(part)):
                    self._check_open()
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise StoreError(self._stuck_message("buffer full"))
                    self._cond.wait(left)
                self._check_open()
                tail = self._chunks[-1] if self._chunks else None
                if tail is not None and tail.table == table and len(tail.rows) < self.batch_size:
                    tail.rows.extend(part)
                else:
                    self._chunks.append(_Chunk(table, part, time.monotonic()))
                self._pending += len(part)
                self._cond.notify_all()

    def wait_for_capacity_blocking(self, rows: int = 1, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self.has_capacity(rows) or self._closing, timeout=timeout
            )

    async def wait_for_capacity(self, rows: int = 1) -> None:
        """Await until ``rows`` can be put without blocking (the stream's backpressure)."""
        if self.has_capacity(rows):
            return
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, self.wait_for_capacity_blocking, rows, 1.0):
            pass

    def flush(self, timeout: float | None = None) -> None:
        """Send everything now; return when the buffer is empty, or raise StoreError."""
        with self._cond:
            self._flush_requests += 1
            self._cond.notify_all()
            try:
                if not self._cond.wait_for(lambda: self._pending == 0, timeout=timeout):
                    raise StoreError(self._stuck_message("flush timed out"))
            finally:
                self._flush_requests -= 1

    def close(self, timeout: float | None = 30.0) -> None:
        """Drain (up to ``timeout``) and stop the sender; raises if rows remain unsent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        try:
            if self._thread.is_alive():
                self.flush(timeout)
        finally:
            with self._cond:
                self._stopped = True
                self._cond.notify_all()
            if self._thread.is_alive():
                self._thread.join(timeout=5.0)

    def _check_open(self) -> None:
        if self._closing or self._stopped:
            raise StoreError("the store's write buffer is closed")

    def _stuck_message(self, what: str) -> str:
        return (
            f"{what}: {self._pending} rows not yet stored after {self.failures} failed "
            f"attempts; last error: {self.last_error!r}"
        )

    # -- sender side ----------------------------------------------------------------------

    def _due(self) -> bool:
        if not self._chunks:
            return False
        if self._pending >= self.batch_size or self._flush_requests or self._closing:
            return True
        return time.monotonic() - self._chunks[0].since >= self.flush_interval_s

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._due():
                    wait = None
                    if self._chunks:
                        age = time.monotonic() - self._chunks[0].since
                        wait = max(0.0, self.flush_interval_s - age)
                    self._cond.wait(wait)
                if self._stopped:
                    return
                head = self._chunks[0]
                table, batch = head.table, head.rows[: self.batch_size]
            try:
                self._sink(table, batch)
            except Exception as exc:  # every failure is retried: the rows must not be lost
                with self._cond:
                    self.failures += 1
                    self.last_error = exc
                    delay = self.backoff.delay(self.failures)
                    log.warning(
                        "store write of %d rows into %s failed (attempt %d), retrying in %.1fs: %r",
                        len(batch), table, self.failures, delay, exc,
                    )  # fmt: skip
                    self._cond.wait_for(lambda: self._stopped, timeout=delay)
                continue
            with self._cond:
                if self.failures:
                    log.info("store writes resumed after %d failed attempts", self.failures)
                self.failures = 0
                del head.rows[: len(batch)]
                if not head.rows:
                    self._chunks.popleft()
                self._pending -= len(batch)
                self.rows_written += len(batch)
                self._cond.notify_all()
