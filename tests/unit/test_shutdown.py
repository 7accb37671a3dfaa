"""The bound on a worker's stop: a stop that hangs ends the process, so a supervisor sees it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

from stream.app import create_app
from stream.config import load_settings
from stream.contiguity import BrokerReader
from stream.references import FileReferences
from stream.shutdown import EXIT_STOP_OVERRAN, ShutdownWatchdog
from stream.worker import MonitorWorker

ROOT = Path(__file__).resolve().parents[2]


def test_an_armed_watchdog_exits_once_the_bound_has_passed() -> None:
    exited = threading.Event()
    codes: list[int] = []

    def record(code: int) -> None:
        codes.append(code)
        exited.set()

    watchdog = ShutdownWatchdog(0.2, exit_process=record)
    assert not watchdog.armed
    time.sleep(0.4)
    assert codes == [], "nothing happens before a stop begins"
    watchdog.arm("test")
    watchdog.arm("again")  # keeps the first deadline, starts no second timer
    assert exited.wait(5)
    time.sleep(0.3)
    assert codes == [EXIT_STOP_OVERRAN]


def test_a_stop_that_hangs_ends_the_process_with_code_70() -> None:
    """The real exit, in a child process whose 'stop' blocks the main thread for a minute."""
    script = ("import time; from stream.shutdown import ShutdownWatchdog; "
              "ShutdownWatchdog(0.5).arm('stopping'); time.sleep(60)")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=50)
    assert done.returncode == EXIT_STOP_OVERRAN, done.stderr
    assert time.monotonic() - started < 50
    assert "stopping took more than 0.5 s; exiting now (code 70)" in done.stderr


def test_every_stop_of_the_worker_arms_the_watchdog(tmp_path: Path) -> None:
    """SIGTERM and an agent's crash both stop the worker through ``on_stop``."""
    settings = load_settings(None, worker={"data_dir": str(tmp_path)})
    reader = BrokerReader({"bootstrap.servers": settings.kafka.bootstrap}, "t")  # lazy
    app = create_app(settings, 2, FileReferences(settings), reader)
    fired: list[int] = []
    watchdog = ShutdownWatchdog(60, exit_process=fired.append)
    worker = MonitorWorker(app, quiet=True, redirect_stdouts=False, watchdog=watchdog)
    assert not watchdog.armed
    asyncio.run(worker.on_stop())
    assert watchdog.armed
    assert fired == []
    assert watchdog._timer is not None
    watchdog._timer.cancel()
