"""Results in a ClickHouse server through clickhouse-connect; several workers may share it.

Writes go through :class:`~stream.store.buffer.WriteBuffer`: batched ``client.insert`` with
column names and typed values, retried with backoff while the server is away, and a
bounded buffer whose fullness pauses the stream (``await store.wait_for_capacity()``).
The client is created lazily and re-created after a failure, so a worker can start, or keep
running, while the server is down.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from stream.config import StoreSettings
from stream.errors import StoreError
from stream.results import AlertRecord, WindowResults
from stream.store import schema
from stream.store.base import QUERY_SETTINGS, Store
from stream.store.buffer import Backoff, WriteBuffer
from stream.store.sqltext import check_identifier

ClientFactory = Callable[[], Any]


def default_client_factory(url: str, database: str) -> ClientFactory:
    """A factory of clickhouse-connect clients for ``url``, in ``database`` (created if absent).

    ``url`` is a DSN: ``http://user:password@host:8123`` (or ``https://``; ``chdb:///path``
    also works and is what the tests use when no server runs).
    """

    def make() -> Any:
        import clickhouse_connect

        extra: dict[str, Any] = {}
        if urlsplit(url).scheme in ("http", "https"):
            # One HTTP session per request: the writer thread and queries run concurrently.
            extra["autogenerate_session_id"] = False
        client = clickhouse_connect.get_client(dsn=url, **extra)
        # A read-only user (docs/store.md) may not run CREATE, even IF NOT EXISTS.
        exists = client.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}",
            parameters={"db": database},
        ).result_rows[0][0]
        if not exists:
            client.command(f"CREATE DATABASE IF NOT EXISTS {database}", use_database=False)
        client.database = database
        return client

    return make


class ServerStore(Store):
    """A ClickHouse server; ``client_factory`` is for tests (a fake, or a chdb:// client)."""

    def __init__(
        self, settings: StoreSettings, client_factory: ClientFactory | None = None
    ) -> None:
        self.database = check_identifier(settings.database)
        # clickhouse-connect's chdb:// backend applies per-query settings with SET and a
        # restore that readonly=1 then refuses: the whole session would stay read-only.
        self._per_query_settings = settings.url is None or not settings.url.get_secret_value(
        ).startswith("chdb:")
        if client_factory is None:
            if settings.url is None:
                raise StoreError("store.kind is 'server' but store.url is not set")
            client_factory = default_client_factory(settings.url.get_secret_value(), self.database)
        self.client_factory = client_factory
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.buffer = WriteBuffer(
            self._insert,
            max_rows=settings.buffer_max_rows,
            batch_size=settings.batch_size,
            flush_interval_s=settings.flush_interval_s,
            backoff=Backoff(settings.retry_initial_s, settings.retry_max_s),
            name="clickhouse",
        ).start()

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self.client_factory()
            return self._client

    def _drop_client(self, client: Any) -> None:
        with self._client_lock:
            if self._client is client:
                self._client = None
        with contextlib.suppress(Exception):  # a broken client may fail to close too
            client.close()

    def _insert(self, table: str, rows: Sequence[schema.Row]) -> None:
        client = self._get_client()
        try:
            client.insert(table, rows, column_names=list(schema.COLUMNS[table]))
        except Exception:
            self._drop_client(client)
            raise

    def _execute_raw(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        return self._run(sql, params, dict(QUERY_SETTINGS))

    def _execute_read_only(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        # A request setting (HTTP parameter), not query text: a SETTINGS clause in the
        # statement cannot lift it. For a user that is already read-only (docs/store.md),
        # clickhouse-connect leaves it out.
        if not self._per_query_settings:
            raise StoreError("read-only queries need a ClickHouse server (http:// or https://): "
                             "the chdb:// backend cannot scope readonly=1 to one query")
        return self._run(sql, params, {**QUERY_SETTINGS, "readonly": 1})

    def _run(self, sql: str, params: Mapping[str, Any] | None, settings: dict[str, int]) -> bytes:
        try:
            client = self._get_client()
            raw = client.raw_query(
                sql, parameters=dict(params or {}), settings=settings, fmt="JSONCompact"
            )
        except Exception as exc:
            raise StoreError(f"ClickHouse query failed: {exc}") from exc
        return bytes(raw)

    def write(self, results: WindowResults) -> None:
        self.buffer.put(schema.DRIFT_TABLE, schema.drift_rows(results.drift))
        self.buffer.put(schema.METRICS_TABLE, schema.metric_rows(results.metrics))

    def write_alerts(self, alerts: Iterable[AlertRecord]) -> None:
        self.buffer.put(schema.ALERTS_TABLE, schema.alert_rows(alerts))

    async def wait_for_capacity(self, rows: int = 1) -> None:
        await self.buffer.wait_for_capacity(rows)

    def flush(self, timeout_s: float | None = None) -> None:
        self.buffer.flush(timeout_s)

    def close(self, timeout_s: float | None = 30.0) -> None:
        try:
            self.buffer.close(timeout_s)
        finally:
            with self._client_lock:
                client, self._client = self._client, None
            if client is not None:
                client.close()
