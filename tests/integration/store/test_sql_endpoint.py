"""``POST /sql`` against chDB: each way out of the store is refused, with a reason, and a
normal query still works. Two lines are tested apart: the engine's ``readonly=1`` (the
reading session) and the text checks of :mod:`stream.store.sqlguard`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.config import StoreSettings
from stream.errors import StoreError
from stream.results import WindowResults
from stream.store.embedded import EmbeddedStore
from stream.store.sqlapi import run_sql_request
from stream.store.sqlguard import ALLOWED_TABLE_FUNCTIONS, DENIED_FUNCTIONS, read_only_problem

from .rows import drift_row

pytestmark = pytest.mark.integration

TOKEN = "t0ken"
HOSTNAME = "SELECT * FROM file('/etc/hostname', 'LineAsString')"


def _post(store: EmbeddedStore, sql: str, **extra: object) -> tuple[int, str]:
    body = orjson.dumps({"sql": sql, **extra})
    status, payload = run_sql_request(store, body, token=TOKEN, content_type="application/json",
                                      authorization=f"Bearer {TOKEN}")  # fmt: skip
    return status, payload.decode()


def test_a_normal_query_works_and_parameters_arrive_as_given(store: EmbeddedStore) -> None:
    store.write(WindowResults(drift=(drift_row(feature="a,b"),)))
    assert _post(store, "SELECT feature, drifted FROM feature_drift", format="csv") == (
        200, 'feature,drifted\n"a,b",1\n')
    value = "it's a \\ back\nslash\tand `tick` \\N"
    status, text = _post(store, "SELECT {v:String} AS v", format="json", params={"v": value})
    assert status == 200 and orjson.loads(text) == [{"v": value}]
    for sql in ("SHOW TABLES", "DESCRIBE TABLE alerts", "EXPLAIN SELECT 1", "EXISTS TABLE alerts",
                "SELECT number FROM numbers(2)",
                "WITH d AS (SELECT * FROM feature_drift_latest) SELECT count() FROM d"):
        assert _post(store, sql)[0] == 200, sql


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (HOSTNAME, "function file() is not accepted"),
        ("SELECT file('/etc/hostname')", "function file()"),
        ("SELECT * FROM `file`('/etc/hostname', 'LineAsString')", "function file()"),
        # Read differently by a naive scanner and by ClickHouse: the second pass, on
        # ClickHouse's own formatting, sees the call.
        ("SELECT $$'$$, file('/etc/hostname') -- '", "function file()"),
        ("SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a Int8')", "function url()"),
        ("SELECT * FROM remote('127.0.0.1:9', system.one)", "function remote()"),
        ("SELECT * FROM s3('http://127.0.0.1:9/b/k.csv', 'CSV', 'a Int8')", "function s3()"),
        ("SELECT * FROM executable('ls', 'TSV', 'x String')", "function executable()"),
        ("SELECT * FROM python(secret)", "function python()"),
        ("SELECT * FROM alerts INTO OUTFILE '{out}'", "INTO OUTFILE"),
        ("SELECT * FROM alerts SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT 1; DROP TABLE alerts", "one statement"),
        ("INSERT INTO alerts SELECT * FROM alerts", "got INSERT"),
        ("DROP TABLE alerts", "got DROP"),
        ("SET readonly = 0", "got SET"),
        ("CREATE TABLE x (a Int8) ENGINE = Memory", "got CREATE"),
    ],
)
def test_each_attack_is_refused_with_its_reason(
    store: EmbeddedStore, tmp_path: Path, sql: str, reason: str
) -> None:
    out = tmp_path / "out.csv"
    status, text = _post(store, sql.replace("{out}", str(out)))
    assert status == 403 and text.startswith("refused: ") and reason in text, text
    assert not out.exists()
    assert store.query("EXISTS TABLE alerts").rows == [(1,)]


def test_the_heredoc_trick_passes_the_text_check_and_not_the_formatted_one(
    store: EmbeddedStore,
) -> None:
    sql = "SELECT $$'$$, file('/etc/hostname') -- '"
    assert read_only_problem(sql) is None  # the scanner does not know heredocs...
    assert store.formatted(sql) == "SELECT '\\'', file('/etc/hostname')"  # ...ClickHouse does


@pytest.mark.parametrize(
    "sql",
    [HOSTNAME, "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a Int8')",
     "SELECT * FROM remote('127.0.0.1:9', system.one)", "SELECT * FROM filesystem('/etc')",
     "INSERT INTO alerts SELECT * FROM alerts", "SET readonly = 0",
     "SELECT 1 SETTINGS readonly = 0", "SELECT 1 SETTINGS max_threads = 1",
     "CREATE TABLE x (a Int8) ENGINE = Memory", "DROP TABLE alerts"],
)  # fmt: skip
def test_the_reading_session_refuses_on_its_own(store: EmbeddedStore, sql: str) -> None:
    """The first line, without the text checks: readonly=1 that no statement can lift."""
    with pytest.raises(StoreError, match=r"READONLY"):
        store.query_read_only(sql)
    assert store.query("EXISTS TABLE alerts").rows == [(1,)]


def test_what_readonly_alone_lets_through(store: EmbeddedStore, tmp_path: Path) -> None:
    """Measured on chDB 4.4: why the text checks refuse these by name. If this starts
    failing, chDB closed them itself; keep the checks and update the module docstring."""
    assert store.query_read_only("SELECT file('/etc/hostname') AS f").rows[0][0]
    out = tmp_path / "leak.csv"
    store.query_read_only(f"SELECT 1 INTO OUTFILE '{out}'")
    assert out.exists()


def test_the_writer_keeps_writing_and_the_reader_sees_it(store: EmbeddedStore) -> None:
    assert store.query_read_only("SELECT getSetting('readonly') AS r").rows == [(1,)]
    assert store.query("SELECT getSetting('readonly') AS r").rows == [(0,)]
    store.write(WindowResults(drift=(drift_row(),)))
    assert store.query_read_only("SELECT count() FROM feature_drift").rows == [(1,)]


def test_every_table_function_chdb_knows_is_classified(store: EmbeddedStore) -> None:
    known = {name for (name,) in store.query("SELECT name FROM system.table_functions").rows}
    unclassified = known - ALLOWED_TABLE_FUNCTIONS - DENIED_FUNCTIONS
    assert not unclassified, f"decide: ALLOWED_TABLE_FUNCTIONS or DENIED_FUNCTIONS? {unclassified}"
    assert known >= ALLOWED_TABLE_FUNCTIONS


def test_a_store_path_cannot_carry_chdb_settings(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="may not contain"):
        EmbeddedStore(StoreSettings(path=tmp_path / "x?readonly=0"))
