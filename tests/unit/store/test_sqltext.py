from __future__ import annotations

import pytest

from stream.errors import StoreError
from stream.store.migrations import load_migrations
from stream.store.sqltext import check_identifier, split_statements


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


def test_comments_are_read_as_clickhouse_reads_them() -> None:
    # Nested block comments and "# " line comments: a quote inside must not open a string.
    sql = "SELECT /* a /* b */ ' */ 1; # it's\nSELECT 2 #!x'\n;"
    assert split_statements(sql) == ["SELECT  1", "SELECT 2"]


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
            elif words[:4] == ["CREATE", "OR", "REPLACE", "VIEW"]:
                pass  # replacing a view is idempotent too (0006: a column the view lacked)
            else:
                assert "IF NOT EXISTS" in head, f"{migration.name}: {head}"
            assert "tidewatch." not in statement, "use unqualified names: the database is a setting"
