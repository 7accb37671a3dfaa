"""The bound on a worker's stop: a stop that hangs ends the process, so a supervisor sees it.

That the worker arms it on every stop is checked with the app's wiring (``test_app.py``) and,
on a real broker, by the SIGTERM and agent-crash tests in ``test_topology_e2e.py``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from stream.runtime.shutdown import EXIT_STOP_OVERRAN, ShutdownWatchdog

ROOT = Path(__file__).resolve().parents[2]


class ExitRecorder:
    """Stands in for ``os._exit``: records the codes, and says when one came."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_an_armed_watchdog_exits_once_the_bound_has_passed() -> None:
    exit_process = ExitRecorder()
    watchdog = ShutdownWatchdog(0.2, exit_process=exit_process)
    time.sleep(0.4)
    assert exit_process.codes == [], "nothing happens before a stop begins"
    watchdog.arm("test")
    watchdog.arm("again")  # keeps the first deadline, starts no second timer
    assert exit_process.called.wait(5)
    time.sleep(0.3)
    assert exit_process.codes == [EXIT_STOP_OVERRAN]


def test_a_stop_that_hangs_ends_the_process_with_code_70() -> None:
    """The real exit, in a child process whose 'stop' blocks the main thread for a minute."""
    script = ("import time; from stream.runtime.shutdown import ShutdownWatchdog; "
              "ShutdownWatchdog(0.5).arm('stopping'); time.sleep(60)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=50)
    assert done.returncode == EXIT_STOP_OVERRAN, done.stderr
    assert "stopping took more than 0.5 s; exiting now (code 70)" in done.stderr
