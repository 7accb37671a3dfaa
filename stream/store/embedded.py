"""Results in chDB, persisted in a local folder: no server to run, one process only.

Writes are synchronous inserts of typed data (``INSERT ... FORMAT JSONColumns`` with the
orjson-encoded columns as the data part); event data never becomes SQL text. chDB holds one
folder per process and refuses a second process with an opaque error, so
:class:`~stream.store.lock.FolderLock` guards the folder first and says what to do instead.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from clickhouse_connect.driver.binding import format_bind_value

from stream.config import StoreSettings
from stream.errors import StoreError
from stream.results import AlertRecord, WindowResults
from stream.store import schema
from stream.store.base import QUERY_SETTINGS, Store
from stream.store.lock import FolderLock
from stream.store.sqltext import check_identifier

_FLOAT_TEXT: Final = {math.inf: "inf", -math.inf: "-inf"}


def _ms_seconds(ms: int) -> float:
    """Epoch ms as the seconds number ClickHouse reads exactly into DateTime64(3).

    A bare integer would be read as seconds, and short seconds strings (``"0.001"``) as
    dates. ``ms / 1000`` prints as the exact three-decimal number for any ``|ms| < 2**53``
    (the shortest repr that round-trips); a test pins this over a wide random range.
    """
    return ms / 1000


def _float_text(value: float) -> str:
    return "nan" if math.isnan(value) else _FLOAT_TEXT[value]


def encode_rows(columns: Sequence[str], rows: Sequence[schema.Row]) -> bytes:
    """``JSONColumns`` bytes (one JSON object of column arrays: one fast orjson call).

    Non-finite floats travel as the strings ClickHouse reads (``"inf"``, ``"nan"``), since
    JSON has no literal for them; times as seconds numbers (see :func:`_ms_seconds`).
    """
    data: dict[str, list[Any]] = {}
    for name, column in zip(columns, zip(*rows, strict=True), strict=True):
        values = list(column)
        if name in schema.TIME_COLUMNS:
            values = [_ms_seconds(v) for v in values]
        elif any(type(v) is float and not math.isfinite(v) for v in values):
            values = [
                _float_text(v) if type(v) is float and not math.isfinite(v) else v for v in values
            ]
        data[name] = values
    return orjson.dumps(data)


class EmbeddedStore(Store):
    """chDB in ``settings.path``; ``migrate()`` is not implied, call it at start-up."""

    def __init__(self, settings: StoreSettings) -> None:
        import chdb.session  # imported late: the server-only deployment never loads the engine

        self.database = check_identifier(settings.database)
        self.path = Path(settings.path).resolve()
        if "?" in str(self.path):  # chDB reads "path?name=value" as settings: readonly=0...
            raise StoreError(f"store.path may not contain '?': {self.path}")
        self._lock = FolderLock(self.path)
        self._lock.acquire()
        self._mutex = threading.Lock()
        try:
            session_class: Any = chdb.session.Session  # chDB has no type hints
            self._session: Any = session_class(f"{self.path}?{urlencode(QUERY_SETTINGS)}")
            self._session.query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            self._session.query(f"USE {self.database}")
            # A second session on the same folder, read-only for its whole life: what the
            # /sql endpoint runs in. No statement can lift it (``SET``/``SETTINGS readonly``
            # are refused), unlike a SETTINGS clause added to the query text.
            read_only = urlencode({"readonly": 1, **QUERY_SETTINGS})
            self._reader: Any = session_class(f"{self.path}?{read_only}")
            self._reader.query(f"USE {self.database}")
        except Exception as exc:
            self._lock.release()
            raise StoreError(
                f"cannot open the embedded store {self.path}: {exc}. chDB holds one folder per "
                "process: close any other embedded store in this process first."
            ) from exc
        self._closed = False

    def _execute_raw(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        return self._run(self._session, sql, params)

    def _execute_read_only(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        return self._run(self._reader, sql, params)

    def _run(self, session: Any, sql: str, params: Mapping[str, Any] | None) -> bytes:
        self._check_open()
        # ClickHouse reads a parameter's value with escapes (``\n``, ``\\``): chDB passes
        # it raw, so a backslash or a newline in a value was altered or refused. Escaped the
        # way clickhouse-connect does for a server, a value arrives as given on both engines.
        bound = {name: format_bind_value(value) for name, value in (params or {}).items()}
        with self._mutex:
            try:
                result = session.query(sql, "JSONCompact", params=bound)
            except Exception as exc:
                raise StoreError(f"chDB query failed: {exc}") from exc
        return bytes(result.bytes())

    def insert(self, table: str, rows: Sequence[schema.Row]) -> int:
        """Insert tuples in :data:`schema.COLUMNS` order; returns the number of rows."""
        if not rows:
            return 0
        columns = schema.COLUMNS[table]
        body = encode_rows(columns, rows)
        self._check_open()
        with self._mutex:
            try:
                # The rows follow FORMAT as data, read by the JSON parser, never as SQL.
                # Not send_insert(): chDB 4.4's streaming insert reports success and drops
                # the rows when the storage refuses them (e.g. too many partitions).
                self._session.query(
                    f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONColumns\n"
                    + body.decode("utf-8")
                )
            except Exception as exc:
                raise StoreError(f"chDB insert into {table} failed: {exc}") from exc
        return len(rows)

    def write(self, results: WindowResults) -> None:
        self.insert(schema.DRIFT_TABLE, schema.drift_rows(results.drift))
        self.insert(schema.METRICS_TABLE, schema.metric_rows(results.metrics))

    def write_alerts(self, alerts: Iterable[AlertRecord]) -> None:
        self.insert(schema.ALERTS_TABLE, schema.alert_rows(alerts))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._mutex:
            try:
                self._reader.close()
            finally:
                try:
                    self._session.close()
                finally:
                    self._lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the embedded store {self.path} is closed")
