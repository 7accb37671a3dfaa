from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stream.errors import StoreError
from stream.store.embedded import EmbeddedStore
from stream.store.migrations import Migration, load_migrations

pytestmark = pytest.mark.integration

EXPECTED_OBJECTS = {
    "feature_drift", "window_metrics", "alerts", "schema_migrations",
    "feature_drift_latest", "window_metrics_latest", "alerts_current",
}  # fmt: skip


def _objects(store: EmbeddedStore) -> set[str]:
    rows = store.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows
    return {r[0] for r in rows}


def test_every_migration_applies_on_an_empty_store_and_is_recorded(
    open_embedded: Callable[..., EmbeddedStore],
) -> None:
    store = open_embedded()
    files = load_migrations()
    applied = store.migrate()
    assert applied == [f"{m.version:04d}_{m.name}" for m in files]
    assert _objects(store) == EXPECTED_OBJECTS
    recorded = store.query("SELECT version, name, checksum FROM schema_migrations FINAL "
                           "ORDER BY version").rows  # fmt: skip
    assert recorded == [(m.version, m.name, m.checksum) for m in files]


def test_migrate_again_is_a_no_op(store: EmbeddedStore) -> None:
    before = store.query("SELECT count() FROM schema_migrations").rows
    assert store.migrate() == []
    assert store.query("SELECT count() FROM schema_migrations").rows == before
    assert _objects(store) == EXPECTED_OBJECTS


def test_each_migration_file_is_idempotent_on_its_own(store: EmbeddedStore) -> None:
    """Re-running a file's statements (a crash before it was recorded) changes nothing."""
    for migration in load_migrations():
        for statement in migration.statements:
            store.query(statement)
    assert _objects(store) == EXPECTED_OBJECTS


def test_schema_survives_reopening_the_folder(
    open_embedded: Callable[..., EmbeddedStore], tmp_path: Path
) -> None:
    first = open_embedded(tmp_path / "db")
    first.migrate()
    first.close()
    again = open_embedded(tmp_path / "db")
    assert again.migrate() == []
    assert _objects(again) == EXPECTED_OBJECTS


def test_new_migration_is_applied_after_the_existing_ones(store: EmbeddedStore) -> None:
    extra = Migration(9001, "extra_view", "CREATE VIEW IF NOT EXISTS extra AS SELECT 1 AS one;")
    assert store.migrate([*load_migrations(), extra]) == ["9001_extra_view"]
    assert store.query("SELECT one FROM extra").rows == [(1,)]


def test_an_edited_applied_migration_is_refused(store: EmbeddedStore) -> None:
    first, *rest = load_migrations()
    edited = Migration(first.version, first.name, first.sql + "\n-- edited\n")
    with pytest.raises(StoreError, match="applied with different content"):
        store.migrate([edited, *rest])


def test_database_name_comes_from_settings_and_is_checked(
    open_embedded: Callable[..., EmbeddedStore],
) -> None:
    with pytest.raises(StoreError, match="invalid ClickHouse identifier"):
        open_embedded(database="x; DROP DATABASE tidewatch")
    store = open_embedded(database="monitoring_2")
    store.migrate()
    assert store.query("SELECT currentDatabase()").rows == [("monitoring_2",)]
    rows = store.query("SELECT count() FROM system.tables WHERE database = 'monitoring_2'").rows
    assert rows == [(len(EXPECTED_OBJECTS),)]
