"""The /sql endpoint's text checks (the second line; readonly=1 is tested against chDB)."""

from __future__ import annotations

import pytest

from stream.store.sqlguard import ALLOWED_TABLE_FUNCTIONS, DENIED_FUNCTIONS, read_only_problem


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", "  with x as (select 1) select * from x", "SHOW TABLES", "DESCRIBE alerts",
     "DESC alerts", "EXPLAIN SELECT 1", "-- note\nSELECT 'DROP TABLE x; INSERT'", "SELECT 1;",
     "EXISTS TABLE alerts", "SELECT * FROM numbers(3)", "SELECT 'file(x)', `settings` FROM t",
     "SELECT feature AS file FROM feature_drift", "SELECT {m:String} AS url",
     "SELECT count() FROM feature_drift_latest WHERE model_id = {m:String}"],
)  # fmt: skip
def test_read_only_statements_pass(sql: str) -> None:
    assert read_only_problem(sql) is None


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("DROP TABLE alerts", "got DROP"),
        ("insert into alerts select * from alerts", "got INSERT"),
        ("OPTIMIZE TABLE alerts FINAL", "got OPTIMIZE"),
        ("SET readonly = 0", "got SET"),
        ("SYSTEM SHUTDOWN", "got SYSTEM"),
        ("SELECT 1; DROP TABLE alerts", "one statement"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("/* SELECT */ ALTER TABLE alerts DELETE WHERE 1", "got ALTER"),
        ("SELECT * FROM alerts INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("select 1 into /* c */ outfile '/tmp/x' truncate", "INTO OUTFILE"),
        ("WITH 1 AS x INSERT INTO t SELECT x", "read-only"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT 1 settings max_threads = 1", "SETTINGS"),
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "file()"),
        ("SELECT file('/etc/hostname')", "file()"),
        ("SELECT * FROM FILE ('/etc/hostname')", "FILE()"),
        ("SELECT * FROM `file`('/etc/hostname')", "file()"),
        ('SELECT "file"(\'/etc/hostname\')', "file()"),
        ("SELECT * FROM file/* c */('/etc/hostname')", "file()"),
        ("SELECT `tidewatch.file`('/etc/hostname')", "tidewatch.file()"),
        ("SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a Int8')", "url()"),
        ("SELECT * FROM s3('http://h/b/k.csv')", "s3()"),
        ("SELECT * FROM remoteSecure('h:9440', system.one)", "remoteSecure()"),
        ("SELECT * FROM executable('ls', 'TSV', 'x String')", "executable()"),
        ("SELECT * FROM python(frame)", "python()"),
        ("WITH (SELECT * FROM mysql('h', 'd', 't', 'u', 'p')) AS x SELECT x", "mysql()"),
        ("DESCRIBE TABLE file('/etc/hostname')", "file()"),
        ("EXPLAIN SELECT * FROM sqlite('/x.db', 't')", "sqlite()"),
        ("", "empty"),
        ("-- only a comment", "empty"),
    ],
)
def test_other_statements_are_refused(sql: str, why: str) -> None:
    problem = read_only_problem(sql)
    assert problem is not None and why in problem, problem


def test_the_issue_s_list_is_denied_and_the_lists_do_not_overlap() -> None:
    named = {"file", "url", "s3", "remote", "remoteSecure", "hdfs", "mysql", "postgresql",
             "executable", "input", "jdbc", "odbc", "sqlite", "cluster", "azureBlobStorage",
             "gcs", "deltaLake", "iceberg", "hudi", "mongodb", "redis"}  # fmt: skip
    assert named <= DENIED_FUNCTIONS
    assert not DENIED_FUNCTIONS & ALLOWED_TABLE_FUNCTIONS
    assert {"numbers", "generateRandom", "values"} <= ALLOWED_TABLE_FUNCTIONS
