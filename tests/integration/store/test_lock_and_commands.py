"""The embedded folder is single-process; `tidewatch sql` goes through the holding worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from stream.cli import main
from stream.config import Settings, StoreSettings, WorkerSettings
from stream.errors import StoreError
from stream.store.commands import run_sql
from stream.store.embedded import EmbeddedStore
from stream.store.lock import lock_holder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
HOLDER = Path(__file__).with_name("holder.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    path, port = tmp_path / "held", _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), str(path), str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc, path, port
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_second_process_is_refused_with_a_clear_message(
    holder: tuple[subprocess.Popen[str], Path, int],
) -> None:
    proc, path, _ = holder
    assert lock_holder(path) == proc.pid
    with pytest.raises(StoreError) as info:
        EmbeddedStore(StoreSettings(path=path))
    message = str(info.value)
    assert f"already open in process {proc.pid}" in message
    assert "single-process" in message
    assert "Several workers need a ClickHouse server" in message


def test_the_lock_dies_with_its_process(
    holder: tuple[subprocess.Popen[str], Path, int],
    open_embedded: Callable[..., EmbeddedStore],
) -> None:
    proc, path, _ = holder
    proc.kill()
    proc.wait()
    assert lock_holder(path) is None  # the pid file stays, the lock does not
    store = open_embedded(path)
    assert store.migrate() == []


def test_a_second_store_in_the_same_process_is_refused(
    open_embedded: Callable[..., EmbeddedStore], tmp_path: Path
) -> None:
    open_embedded(tmp_path / "one")
    with pytest.raises(StoreError, match="already open in this process"):
        open_embedded(tmp_path / "one")
    with pytest.raises(StoreError, match="one folder per process"):
        open_embedded(tmp_path / "two")
    assert lock_holder(tmp_path / "two") is None  # the refused store let its lock go


def test_sql_goes_through_the_worker_that_holds_the_folder(
    holder: tuple[subprocess.Popen[str], Path, int],
) -> None:
    _, path, port = holder
    settings = Settings(store=StoreSettings(path=path), worker=WorkerSettings(web_port=port))
    text = run_sql(settings, "SELECT count() AS n FROM feature_drift_latest")
    assert text.splitlines()[0].strip() == "n" and text.splitlines()[2].strip() == "0"
    as_json = run_sql(settings, "SELECT {x:String} AS x", "json", {"x": "it's"})
    assert orjson.loads(as_json) == [{"x": "it's"}]
    with pytest.raises(StoreError, match=r"refused the query \(403\).*read-only"):
        run_sql(settings, "DROP TABLE feature_drift")


def test_cli_migrate_and_sql_on_a_free_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEWATCH_STORE__PATH", str(tmp_path / "cli"))
    monkeypatch.delenv("TIDEWATCH_CONFIG", raising=False)
    assert main(["migrate"]) == 0
    assert "0001_feature_drift" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["sql", "SELECT {n:UInt8} + 1 AS n, 'x' AS s", "--param", "n=41"]) == 0
    assert capsys.readouterr().out == " n  s\n--  -\n42  x\n(1 row)\n"
    assert main(["sql", "SELECT * FROM missing_table"]) == 1
    assert "missing_table" in capsys.readouterr().err
