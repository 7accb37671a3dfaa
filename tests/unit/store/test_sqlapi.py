"""The /sql request checks (origin, content type, token) and the token file, without chDB."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from stream.config import Settings, StoreSettings, WorkerSettings
from stream.errors import StoreError
from stream.results import AlertRecord, WindowResults
from stream.store.base import Store
from stream.store.sqlapi import read_sql_token, run_sql_request, start_sql_token, token_path

TOKEN = "s3cret-token"
JSON = "application/json"
RESULT = b'{"meta": [{"name": "n", "type": "UInt8"}], "data": [[1]]}'


class RecordingStore(Store):
    """Answers every query with one row and records what ran, and how."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def _execute_raw(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        self.ran.append(("raw", sql))
        return RESULT

    def _execute_read_only(self, sql: str, params: Mapping[str, Any] | None) -> bytes:
        self.ran.append(("read_only", sql))
        if sql.startswith("SELECT formatQuerySingleLine"):
            text = orjson.dumps((params or {})["q"]).decode()
            return b'{"meta": [{"name": "q", "type": "String"}], "data": [[%b]]}' % text.encode()
        return RESULT

    def write(self, results: WindowResults) -> None:
        raise AssertionError("not used")

    def write_alerts(self, alerts: Iterable[AlertRecord]) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        pass


def _call(store: Store, body: bytes = b'{"sql": "SELECT 1 AS n", "format": "csv"}',
          **headers: str | None) -> tuple[int, bytes]:  # fmt: skip
    given: dict[str, Any] = {"content_type": JSON, "authorization": f"Bearer {TOKEN}"}
    return run_sql_request(store, body, token=TOKEN, **{**given, **headers})


def test_a_good_request_runs_read_only() -> None:
    store = RecordingStore()
    assert _call(store) == (200, b"n\n1\n")
    assert _call(store, content_type="Application/JSON; charset=utf-8")[0] == 200
    assert _call(store, authorization=f"bearer {TOKEN}")[0] == 200
    assert {how for how, _ in store.ran} == {"read_only"}  # never the writing session


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({"content_type": "text/plain"}, 415, b"Content-Type: application/json"),
        ({"content_type": None}, 415, b"Content-Type: application/json"),
        ({"content_type": "application/x-www-form-urlencoded"}, 415, b"application/json"),
        ({"authorization": None}, 401, b"token"),
        ({"authorization": "Bearer wrong"}, 401, b"token"),
        ({"authorization": f"Bearer {TOKEN}x"}, 401, b"token"),
        ({"authorization": TOKEN}, 401, b"token"),
        ({"authorization": f"Basic {TOKEN}"}, 401, b"token"),
        ({"origin": "https://example.com"}, 403, b"Origin"),
        ({"origin": "null"}, 403, b"Origin"),
    ],
)
def test_requests_a_web_page_could_send_are_refused_before_any_query(
    headers: dict[str, str | None], status: int, reason: bytes
) -> None:
    store = RecordingStore()
    got, body = _call(store, **headers)
    assert got == status and reason in body, body
    assert store.ran == []


def test_a_refused_query_never_reaches_the_store_and_says_why() -> None:
    store = RecordingStore()
    body = orjson.dumps({"sql": "SELECT * FROM file('/etc/hostname', 'LineAsString')"})
    status, payload = _call(store, body)
    assert (status, payload) == (403, b"refused: function file() is not accepted here: it "
                                      b"reaches files, the network, other programs or other "
                                      b"databases\n")  # fmt: skip
    assert store.ran == []


def test_the_check_runs_again_on_clickhouse_s_formatting() -> None:
    class Reformatting(RecordingStore):
        def formatted(self, sql: str) -> str:  # what ClickHouse made of a lexer trick
            return "SELECT '\\'', file('/etc/hostname')"

    store = Reformatting()
    status, payload = _call(store, orjson.dumps({"sql": "SELECT $$'$$, file('/x') -- '"}))
    assert status == 403 and b"file()" in payload
    assert store.ran == []


def test_malformed_requests_are_400() -> None:
    for body, reason in [(b"not json", b"not JSON"), (b"[]", b'string "sql"'),
                         (orjson.dumps({"sql": "SELECT 1", "format": "xml"}), b"format must"),
                         (orjson.dumps({"sql": "SELECT 1", "params": [1]}), b'"params"')]:
        status, payload = _call(RecordingStore(), body)
        assert status == 400 and reason in payload, payload


def test_engine_refusals_are_403_and_other_failures_400() -> None:
    class Failing(RecordingStore):
        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

        def query_read_only(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
            raise StoreError(self.message)

        def formatted(self, sql: str) -> str:
            return sql

    assert _call(Failing("Code: 164. Cannot execute query in readonly mode. (READONLY)"))[0] == 403
    assert _call(Failing("Code: 47. Unknown identifier (UNKNOWN_IDENTIFIER)"))[0] == 400


def _settings(tmp_path: Path, **worker: Any) -> Settings:
    return Settings(store=StoreSettings(path=tmp_path / "chdb"),
                    worker=WorkerSettings(data_dir=tmp_path / "worker", **worker))  # fmt: skip


def test_the_generated_token_is_private_new_each_start_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    with caplog.at_level(logging.DEBUG):
        first = start_sql_token(settings)
        second = start_sql_token(settings)
    path = token_path(settings)
    assert path == tmp_path / "chdb" / "sql-token"  # beside the embedded store's lock
    assert first != second and len(second) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_sql_token(settings) == second
    assert [p.name for p in path.parent.iterdir()] == ["sql-token"]  # no temporary left
    assert str(path) in caplog.text and first not in caplog.text and second not in caplog.text


def test_a_token_from_the_settings_is_used_and_no_file_written(tmp_path: Path) -> None:
    settings = _settings(tmp_path, sql_token=SecretStr("from-settings"))
    assert start_sql_token(settings) == "from-settings" == read_sql_token(settings)
    assert not token_path(settings).exists()
    assert "from-settings" not in repr(settings)


def test_without_a_token_the_cli_says_where_it_looked(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(
        update={"store": StoreSettings(kind="server", url=SecretStr("http://h:8123"))})
    assert token_path(settings) == tmp_path / "worker" / "tidewatch" / "sql-token"
    with pytest.raises(StoreError, match=r"cannot read the worker's /sql token from .*sql-token"):
        read_sql_token(settings)
