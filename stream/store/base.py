"""The store's small interface, and what both implementations share (migrations, queries).

Implementations only say how to run one statement (``_execute_raw``) and how rows get in.
Queries come back as ``JSONCompact`` from both engines and are decoded here, so a query
returns the same Python values whether it ran on chDB or on a server: integers, floats
(including ``inf``/``nan``), strings, ``None``; DateTime64 as ``'YYYY-MM-DD hh:mm:ss.fff'``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from stream.errors import StoreError
from stream.results import AlertRecord, WindowResults
from stream.store.migrations import Migration, apply_migrations, load_migrations

#: Output settings both engines use for queries, so that decoding is exact.
QUERY_SETTINGS: Final[dict[str, int]] = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_denormals": 1,
}
_SPECIAL_FLOATS: Final = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan,
                          "-nan": math.nan}  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names, ClickHouse types and rows; unpacks as ``columns, rows = result``."""

    columns: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        yield self.columns
        yield self.rows

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def parse_json_compact(raw: bytes) -> QueryResult:
    """Decode ClickHouse ``JSONCompact`` output (empty for statements without a result)."""
    if not raw.strip():
        return QueryResult()
    try:
        doc = orjson.loads(raw)
        columns = tuple(str(m["name"]) for m in doc["meta"])
        types = tuple(str(m["type"]) for m in doc["meta"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoreError(
            "the query did not return JSONCompact: leave out any FORMAT clause "
            "(`tidewatch sql --format` chooses the output)"
        ) from exc
    floats = [i for i, t in enumerate(types) if "Float" in t]
    rows: list[tuple[Any, ...]] = []
    for values in doc["data"]:
        for i in floats:
            value = values[i]
            if isinstance(value, int):  # JSON writes 0.0 as 0
                values[i] = float(value)
            elif isinstance(value, str):
                values[i] = _SPECIAL_FLOATS.get(value, value)
        rows.append(tuple(values))
    return QueryResult(columns, types, rows)


class Store(abc.ABC):
    """Where window results and alerts go.

    ``write`` may buffer; ``flush`` returns once everything written before it is stored.
    ``wait_for_capacity`` is what an asyncio stream awaits before ``write`` so that a full
    buffer (store unreachable) pauses consumption instead of blocking the event loop.
    """

    database: str

    def migrate(self, migrations: list[Migration] | None = None) -> list[str]:
        """Create the database and apply pending migrations; return the names applied."""
        return apply_migrations(self._execute_rows, migrations or load_migrations())

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run one statement with ``{name:Type}`` parameters; never format values into SQL."""
        return parse_json_compact(self._execute_raw(sql, params))

    def query_read_only(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """:meth:`query` with ClickHouse's ``readonly=1`` set by the engine, not in the text.

        What the worker's ``/sql`` endpoint runs: writes, setting changes and the table
        functions that reach files or the network are refused by ClickHouse itself.
        """
        return parse_json_compact(self._execute_read_only(sql, params))

    def formatted(self, sql: str) -> str:
        """ClickHouse's own single-line formatting of ``sql`` (comments gone, names plain).

        Raises StoreError when ClickHouse cannot parse it (or it holds several statements).
        """
        rows = self.query_read_only("SELECT formatQuerySingleLine({q:String})", {"q": sql}).rows
        return str(rows[0][0])

    def _execute_rows(self, sql: str, params: Mapping[str, Any] | None) -> list[tuple[Any, ...]]:
        return self.query(sql, params).rows

    @abc.abstractmethod
    def _execute_raw(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        """Run one statement in :attr:`database`; return its ``JSONCompact`` output."""

    @abc.abstractmethod
    def _execute_read_only(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        """:meth:`_execute_raw` with ``readonly=1`` that the statement cannot lift."""

    @abc.abstractmethod
    def write(self, results: WindowResults) -> None:
        """Store (or enqueue) every row of ``results``; blocks while a buffer is full."""

    @abc.abstractmethod
    def write_alerts(self, alerts: Iterable[AlertRecord]) -> None:
        """Store (or enqueue) alert state changes."""

    async def write_async(self, results: WindowResults) -> None:
        """Await capacity, then write: the call an asyncio agent should make."""
        await self.wait_for_capacity(count_rows(results))
        self.write(results)

    async def wait_for_capacity(self, rows: int = 1) -> None:  # noqa: B027 - optional hook
        """Return when ``rows`` more rows can be written without blocking."""

    def flush(self, timeout_s: float | None = None) -> None:  # noqa: B027 - optional hook
        """Return once everything written so far is stored; raise StoreError on timeout."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release the engine; the store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_rows(results: WindowResults) -> int:
    return len(results.drift) + len(results.metrics)
