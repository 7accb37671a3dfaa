"""The Faust app's wiring that can be checked without a broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import mode

from stream.config import Settings, load_settings
from stream.merge.references import FileReferences
from stream.runtime.app import create_app
from stream.runtime.contiguity import BrokerReader
from stream.runtime.durable import TrackedTable
from stream.runtime.shutdown import EXIT_STOP_OVERRAN, ShutdownWatchdog
from stream.runtime.worker import MonitorWorker
from tests.unit.runtime.test_shutdown import ExitRecorder


def reader(settings: Settings) -> BrokerReader:
    return BrokerReader({"bootstrap.servers": settings.kafka.bootstrap}, "t")  # connects lazily


def test_tables_are_tracked_and_rocksdb_memory_is_bounded(tmp_path: Path) -> None:
    settings = load_settings(None, worker={"data_dir": str(tmp_path), "app_id": "t",
                                           "rocksdb_memory_mb": 8})
    app = create_app(settings, 4, FileReferences(settings), reader(settings))
    assert set(app.tables) == {"joins", "perf", "finals", "alert_state"}
    for table in app.tables.values():
        assert isinstance(table, TrackedTable)
        options = table.data.rocksdb_options  # the store, built but not opened
        assert options.write_buffer_size == 2 * 1024 * 1024
        assert options.max_write_buffer_number == 2
        assert options.block_cache_size == 4 * 1024 * 1024
    assert app.conf.datadir == tmp_path / "t"  # one folder per app: its changelog offsets


def test_no_standby_replicas_unless_asked(tmp_path: Path) -> None:
    """A standby applies every changelog record of the partitions it copies: with two workers
    that cost 10-15% more CPU per event (docs/state.md). Faust's own default is 1."""
    settings = load_settings(None, worker={"data_dir": str(tmp_path)})
    app = create_app(settings, 4, FileReferences(settings), reader(settings))
    assert app.conf.table_standby_replicas == 0
    asked = load_settings(None, worker={"data_dir": str(tmp_path), "standby_replicas": 1})
    app = create_app(asked, 4, FileReferences(asked), reader(asked))
    assert app.conf.table_standby_replicas == 1


def test_memory_tables_take_no_rocksdb_options(tmp_path: Path) -> None:
    settings = load_settings(None, worker={"data_dir": str(tmp_path),
                                           "table_store": "memory://"})
    app = create_app(settings, 4, FileReferences(settings), reader(settings))
    assert all(table.options is None for table in app.tables.values())


def test_a_failing_agent_stops_the_worker_not_restarts_in_place(tmp_path: Path) -> None:
    """Faust's default supervisor restarts a failed agent with the worker up, which can ack
    past the message it failed on (see stream.runtime.app); ours crash the worker instead."""
    settings = load_settings(None, worker={"data_dir": str(tmp_path)})
    app = create_app(settings, 4, FileReferences(settings), reader(settings))
    assert set(app.agents) == {"stage1", "stage2", "alerts"}  # the store agent needs a store
    assert all(a.supervisor_strategy is mode.CrashingSupervisor for a in app.agents.values())


def test_every_stop_of_the_worker_arms_the_bound_on_its_stop(tmp_path: Path) -> None:
    """SIGTERM, SIGINT and an agent's crash all stop the worker through ``on_stop``."""
    settings = load_settings(None, worker={"data_dir": str(tmp_path)})
    app = create_app(settings, 2, FileReferences(settings), reader(settings))
    exit_process = ExitRecorder()
    worker = MonitorWorker(app, quiet=True, redirect_stdouts=False,
                           watchdog=ShutdownWatchdog(0.1, exit_process=exit_process))
    asyncio.run(worker.on_stop())
    assert exit_process.called.wait(5)
    assert exit_process.codes == [EXIT_STOP_OVERRAN]
