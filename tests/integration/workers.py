"""Run real worker processes (``tidewatch worker``) against the local broker in tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from stream.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(bootstrap: str, tmp_path: Path, **sections: Any) -> tuple[Settings, Path]:
    """Settings with unique topics and app id (tests share one broker), written to YAML."""
    tag = uuid.uuid4().hex[:8]
    doc: dict[str, Any] = {
        "kafka": {"bootstrap": bootstrap},
        "topics": {"predictions": f"pred-{tag}", "labels": f"labels-{tag}",
                   "dead_letter": f"dlq-{tag}", "alerts": f"alerts-{tag}", "partitions": 4},
        "worker": {"app_id": f"tw-{tag}", "data_dir": str(tmp_path / "worker"),
                   "web_port": free_port()},
        "store": {"path": str(tmp_path / "chdb")},
    }
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    path = tmp_path / "tidewatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_settings(path), path


class WorkerProcess:
    """One ``tidewatch worker`` child process; stop() is SIGTERM, kill() is SIGKILL."""

    def __init__(self, config: Path, settings: Settings, name: str = "worker",
                 web_port: int | None = None, data_slot: str | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        """``data_slot`` names the worker's local state folder (RocksDB tables): a restarted
        worker on the same host passes the same slot; two live workers never share one."""
        self.settings = settings
        self.port = web_port or settings.worker.web_port
        data_dir = settings.worker.data_dir / (data_slot or name)
        env = dict(os.environ, TIDEWATCH_WORKER__WEB_PORT=str(self.port),
                   TIDEWATCH_WORKER__DATA_DIR=str(data_dir))
        env.pop("TIDEWATCH_CONFIG", None)
        env.update(extra_env or {})
        self.log_path = config.parent / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "worker", "--config", str(config)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def stats(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=3) as r:
                data: dict[str, Any] = json.loads(r.read())
                return data
        except OSError:
            return None

    def wait_until(self, predicate: Any, timeout: float = 90, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}); log:\n"
                                     + self.log_path.read_text()[-4000:])
            last = self.stats()
            if last is not None and predicate(last):
                return last
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; log tail:\n"
                             + self.log_path.read_text()[-3000:] + "\n" + self.diagnose())

    def diagnose(self) -> str:
        """What to look at when the worker seems stuck: its offsets and partitions (from
        ``/stats``), and a dump of every thread and asyncio task, which the worker (mode's
        SIGUSR1 handler) writes to its log."""
        stats = self.stats()
        if stats is None:  # not serving yet: SIGUSR1's handler may not be in place either
            return f"{self.log_path.name}: no /stats answer"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
        keep = {k: stats.get(k) for k in ("offsets", "partitions", "merge")}
        return f"{self.log_path.name}: {json.dumps(keep)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
