"""The Faust app's wiring that can be checked without a broker."""

from __future__ import annotations

from pathlib import Path

from stream.app import create_app
from stream.config import load_settings
from stream.durable import TrackedTable
from stream.references import FileReferences


def test_tables_are_tracked_and_rocksdb_memory_is_bounded(tmp_path: Path) -> None:
    settings = load_settings(None, worker={"data_dir": str(tmp_path), "app_id": "t",
                                           "rocksdb_memory_mb": 8})
    app = create_app(settings, 4, FileReferences(settings))
    assert set(app.tables) == {"joins", "progress", "perf", "finals"}
    for table in app.tables.values():
        assert isinstance(table, TrackedTable)
        options = table.data.rocksdb_options  # the store, built but not opened
        assert options.write_buffer_size == 2 * 1024 * 1024
        assert options.max_write_buffer_number == 2
        assert options.block_cache_size == 4 * 1024 * 1024
    assert app.conf.datadir == tmp_path / "t"  # one folder per app: its changelog offsets


def test_memory_tables_take_no_rocksdb_options(tmp_path: Path) -> None:
    settings = load_settings(None, worker={"data_dir": str(tmp_path),
                                           "table_store": "memory://"})
    app = create_app(settings, 4, FileReferences(settings))
    assert all(table.options is None for table in app.tables.values())
