from __future__ import annotations

import pytest

from stream.errors import StoreError
from stream.store.migrations import load_migrations
from stream.store.sqltext import check_identifier, read_only_problem, split_statements


def test_split_statements_respects_quotes_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory;
    /* block; comment */ SELECT "we;ird", `id;x`, 'it''s;', 'esc\\';' FROM a;

    SELECT 1
    """
    assert split_statements(sql) == [
        "CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory",
        "SELECT \"we;ird\", `id;x`, 'it''s;', 'esc\\';' FROM a",
        "SELECT 1",
    ]


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", "  with x as (select 1) select * from x", "SHOW TABLES", "DESCRIBE alerts",
     "DESC alerts", "EXPLAIN SELECT 1", "-- note\nSELECT 'DROP TABLE x; INSERT'", "SELECT 1;"],
)  # fmt: skip
def test_read_only_statements_pass(sql: str) -> None:
    assert read_only_problem(sql) is None


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("DROP TABLE alerts", "got DROP"),
        ("insert into alerts select * from alerts", "got INSERT"),
        ("OPTIMIZE TABLE alerts FINAL", "got OPTIMIZE"),
        ("SELECT 1; DROP TABLE alerts", "one statement"),
        ("/* SELECT */ ALTER TABLE alerts DELETE WHERE 1", "got ALTER"),
        ("SELECT * FROM alerts INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("WITH 1 AS x INSERT INTO t SELECT x", "read-only"),
        ("", "empty"),
        ("-- only a comment", "empty"),
    ],
)
def test_other_statements_are_refused(sql: str, why: str) -> None:
    problem = read_only_problem(sql)
    assert problem is not None and why in problem


@pytest.mark.parametrize("name", ["tidewatch", "_x1", "Monitoring_2"])
def test_identifiers(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "1x", "a-b", "a b", "x;DROP", "a`b", "é", "x" * 64])
def test_bad_identifiers(name: str) -> None:
    with pytest.raises(StoreError, match="invalid ClickHouse identifier"):
        check_identifier(name)


def test_migration_files_are_ordered_and_idempotent_by_construction() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        for statement in migration.statements:
            words = statement.upper().split()
            head = " ".join(words[:5])
            if words[:2] == ["ALTER", "TABLE"]:  # every ADD COLUMN must be idempotent too
                text = " ".join(words)
                assert text.count("ADD COLUMN") == text.count("ADD COLUMN IF NOT EXISTS") > 0
            else:
                assert "IF NOT EXISTS" in head, f"{migration.name}: {head}"
            assert "tidewatch." not in statement, "use unqualified names: the database is a setting"
