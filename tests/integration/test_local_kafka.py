"""The project's broker script: a SIGTERM to ``local_kafka.py run`` still stops the broker.

CI and ``make`` run the suite inside ``local_kafka.py run``; a timeout or a killed job sends
it SIGTERM, and a broker left behind would hold ports and memory on a shared machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.workers import ROOT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_to_run_stops_the_broker(tmp_path: Path) -> None:
    state = tmp_path / "kafka.json"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "kafka" / "local_kafka.py"), "run",
         "--state", str(state), "--", "sleep", "300"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state.exists(), "the broker never started"
        info = json.loads(state.read_text())
        home = Path(info["home"])
        # The state file is written as the broker process starts: the signal comes while
        # it is still starting or once the command runs; either way it must be stopped.
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        for _ in range(50):
            if not _alive(int(info["pid"])):
                break
            time.sleep(0.2)
        assert not _alive(int(info["pid"])), "broker left running after SIGTERM"
        assert not state.exists() and not home.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
