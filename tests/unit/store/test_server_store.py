"""The server store's writer with no server: a closed port, then a fake client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from stream.config import StoreSettings
from stream.errors import StoreError
from stream.results import DriftRow, MetricRow, WindowResults
from stream.store import open_store, schema
from stream.store.server import ServerStore


def drift(i: int) -> DriftRow:
    return DriftRow("m", "v1", "all", 0, 300_000, f"f{i:04d}", "ks", 0.1, 0.5, 0.5, 0.05,
                    None if i % 3 == 0 else bool(i % 2), 10, 20, 1, 400_000)  # fmt: skip


def metric(i: int) -> MetricRow:
    return MetricRow("m", "v1", "all", 0, 300_000, "performance", f"m{i:04d}", "", 0.9, 10, 5,
                     0.5, 1, 400_000)  # fmt: skip


class FakeClient:
    def __init__(self, log: list[tuple[str, tuple[Any, ...]]], fail: int = 0) -> None:
        self.log, self.fail = log, fail
        self.columns: dict[str, list[str]] = {}

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]], column_names: list[str]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionResetError("connection reset by peer")
        self.columns[table] = column_names
        self.log.extend((table, row) for row in rows)

    def close(self) -> None:
        pass


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once the socket is closed


def settings(**kw: Any) -> StoreSettings:
    base: dict[str, Any] = {"kind": "server", "url": SecretStr("http://127.0.0.1:1"),
                            "batch_size": 7, "flush_interval_s": 0.02, "buffer_max_rows": 30,
                            "retry_initial_s": 0.01, "retry_max_s": 0.05}  # fmt: skip
    return StoreSettings(**(base | kw))


def test_open_store_picks_the_server_store_without_connecting() -> None:
    store = open_store(settings(url=SecretStr(f"http://127.0.0.1:{closed_port()}")))
    assert isinstance(store, ServerStore)
    store.close(timeout_s=1)


def test_writes_survive_an_outage_on_a_closed_port_and_resume() -> None:
    url = f"http://default:@127.0.0.1:{closed_port()}"
    store = ServerStore(settings(url=SecretStr(url)))
    log: list[tuple[str, tuple[Any, ...]]] = []

    async def stream() -> bool:
        paused = False
        for start in range(0, 60, 5):
            results = WindowResults(drift=tuple(drift(i) for i in range(start, start + 5)))
            waiter = asyncio.ensure_future(store.wait_for_capacity(5))
            await asyncio.sleep(0.02)
            if not waiter.done():
                paused = True
                assert store.buffer.pending_rows == 30  # full, nothing dropped
                for _ in range(500):  # the sender meets the closed port
                    if store.buffer.failures >= 2:
                        break
                    await asyncio.sleep(0.01)
                assert "Connection refused" in repr(store.buffer.last_error)
                assert not waiter.done()  # still paused
                # The server comes back (same address, now answering).
                store.client_factory = lambda: FakeClient(log)
            await asyncio.wait_for(waiter, timeout=10)
            store.write(results)
        return paused

    assert asyncio.run(stream()) is True
    store.flush(timeout_s=10)
    assert [row[5] for _, row in log] == [f"f{i:04d}" for i in range(60)]
    store.close()


def test_a_client_failing_n_times_loses_nothing_and_keeps_order() -> None:
    log: list[tuple[str, tuple[Any, ...]]] = []
    clients: list[FakeClient] = []

    def factory() -> FakeClient:
        # Each failure drops the client; the next one fails until 4 clients were made.
        client = FakeClient(log, fail=1 if len(clients) < 4 else 0)
        clients.append(client)
        return client

    store = ServerStore(settings(buffer_max_rows=1000), client_factory=factory)
    for start in range(0, 40, 10):
        store.write(WindowResults(
            drift=tuple(drift(i) for i in range(start, start + 10)),
            metrics=tuple(metric(i) for i in range(start, start + 3)),
        ))  # fmt: skip
    store.flush(timeout_s=10)
    assert len(clients) == 5
    drift_written = [row for table, row in log if table == schema.DRIFT_TABLE]
    assert drift_written == schema.drift_rows(drift(i) for i in range(40))
    metric_names = [row[6] for table, row in log if table == schema.METRICS_TABLE]
    assert metric_names == [f"m{i:04d}" for s in range(0, 40, 10) for i in range(s, s + 3)]
    assert clients[-1].columns[schema.DRIFT_TABLE] == list(schema.DRIFT_COLUMNS)
    store.close()


def test_sync_write_blocks_while_full_and_unblocks() -> None:
    log: list[tuple[str, tuple[Any, ...]]] = []
    up = threading.Event()

    def factory() -> FakeClient:
        if not up.is_set():
            raise ConnectionRefusedError("down")
        return FakeClient(log)

    store = ServerStore(settings(buffer_max_rows=10), client_factory=factory)
    store.write(WindowResults(drift=tuple(drift(i) for i in range(10))))
    done = threading.Event()
    threading.Thread(
        target=lambda: (store.write(WindowResults(drift=(drift(10),))), done.set()), daemon=True
    ).start()
    time.sleep(0.1)
    assert not done.is_set()
    up.set()
    assert done.wait(5)
    store.flush(timeout_s=5)
    assert len(log) == 11
    store.close()


def test_query_errors_are_store_errors() -> None:
    store = ServerStore(settings(url=SecretStr(f"http://127.0.0.1:{closed_port()}")))
    with pytest.raises(StoreError, match="ClickHouse query failed"):
        store.query("SELECT 1")
    store.close(timeout_s=1)


def test_bad_database_name_is_refused() -> None:
    with pytest.raises(StoreError, match="invalid ClickHouse identifier"):
        ServerStore(settings(database="a.b"))


def test_read_only_queries_carry_readonly_as_a_request_setting() -> None:
    sent: list[dict[str, Any]] = []

    class Recording(FakeClient):
        def raw_query(self, sql: str, parameters: dict[str, Any], settings: dict[str, Any],
                      fmt: str) -> bytes:  # fmt: skip
            sent.append(settings)
            return b'{"meta": [{"name": "x", "type": "UInt8"}], "data": [[1]]}'

    store = ServerStore(settings(), client_factory=lambda: Recording([]))
    assert store.query_read_only("SELECT 1 AS x").rows == [(1,)]
    assert store.query("SELECT 1 AS x").rows == [(1,)]
    assert sent[0]["readonly"] == 1 and "readonly" not in sent[1]  # the writer stays writable
    store.close(timeout_s=1)
