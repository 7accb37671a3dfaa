"""Ordered, idempotent schema migrations: ``clickhouse/migrations/NNNN_name.sql``.

Each file is applied once per database, in version order, and recorded in
``schema_migrations`` with a checksum; a recorded migration whose file has since changed is
an error (write a new migration instead). Statements use ``IF NOT EXISTS`` and unqualified
table names, so the same file runs on chDB and on a server against the configured database,
and a migration interrupted halfway can simply be run again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from stream.errors import StoreError
from stream.store.sqltext import split_statements

_FILE: Final = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

MIGRATIONS_TABLE_DDL: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""
_RECORD: Final = (
    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
    "SELECT {version:UInt32}, {name:String}, {checksum:String}, now64(3, 'UTC')"
)
_APPLIED: Final = "SELECT version, name, checksum FROM schema_migrations FINAL ORDER BY version"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def clickhouse_dir() -> Path:
    """The repository's ``clickhouse/`` folder (source checkout, or the working directory)."""
    candidates = (Path(__file__).resolve().parents[2] / "clickhouse", Path.cwd() / "clickhouse")
    for candidate in candidates:
        if (candidate / "migrations").is_dir():
            return candidate
    raise StoreError(
        "cannot find the clickhouse/migrations folder next to the package or in the working "
        f"directory (looked in {', '.join(str(c) for c in candidates)})"
    )


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or clickhouse_dir() / "migrations"
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if not match:
            raise StoreError(f"migration file {path.name} is not named NNNN_lower_case_name.sql")
        version = int(match.group(1))
        if version in found:
            raise StoreError(f"two migrations share version {version:04d} in {directory}")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    if not found:
        raise StoreError(f"no migrations in {directory}")
    return [found[v] for v in sorted(found)]


Execute = Callable[[str, Mapping[str, Any] | None], list[tuple[Any, ...]]]


def apply_migrations(execute: Execute, migrations: list[Migration]) -> list[str]:
    """Apply what is not yet recorded; return the names applied (empty when up to date).

    ``execute(sql, params)`` runs one statement in the target database and returns its rows.
    """
    execute(MIGRATIONS_TABLE_DDL, None)
    applied = {int(v): (str(n), str(c)) for v, n, c in execute(_APPLIED, None)}
    done: list[str] = []
    for migration in migrations:
        label = f"{migration.version:04d}_{migration.name}"
        if migration.version in applied:
            _, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise StoreError(
                    f"migration {label} was applied with different content; migrations are "
                    "immutable once applied: revert the edit and add a new migration file"
                )
            continue
        for statement in migration.statements:
            try:
                execute(statement, None)
            except StoreError as exc:
                raise StoreError(f"migration {label} failed: {exc}") from exc
        params = {"version": migration.version, "name": migration.name,
                  "checksum": migration.checksum}  # fmt: skip
        execute(_RECORD, params)
        done.append(label)
    return done
