"""A real worker's ``POST /sql``: what a web page could send is refused, ``tidewatch sql``
still works, and the token is in its 0600 file and nowhere in the worker's log."""

from __future__ import annotations

import stat
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from stream.store.commands import run_sql
from stream.store.sqlapi import read_sql_token, token_path
from stream.topics import ensure_topics

from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

HOSTNAME = "SELECT * FROM file('/etc/hostname', 'LineAsString')"


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sql", data=body, method="POST",
                                     headers=headers)  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_worker_s_sql_endpoint_refuses_a_web_page_and_serves_the_cli(
    bootstrap: str, tmp_path: Path
) -> None:
    settings, config = make_settings(bootstrap, tmp_path, topics={"partitions": 1})
    ensure_topics(settings)
    worker = WorkerProcess(config, settings)
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        token = read_sql_token(settings)
        assert stat.S_IMODE(token_path(settings).stat().st_mode) == 0o600
        body = orjson.dumps({"sql": HOSTNAME})
        # What a page can send without a preflight: a "simple" text/plain POST.
        assert _post(worker.port, body, {"Content-Type": "text/plain"})[0] == 415
        as_json = {"Content-Type": "application/json"}
        status, text = _post(worker.port, body, as_json)
        assert status == 401 and "token" in text
        with_token = {**as_json, "Authorization": f"Bearer {token}"}
        status, text = _post(worker.port, body, {**with_token, "Origin": "https://evil.test"})
        assert status == 403 and "Origin" in text
        status, text = _post(worker.port, body, with_token)
        assert status == 403 and "file()" in text, text
        out = run_sql(settings, "SELECT count() AS n FROM feature_drift_latest", "json")
        assert orjson.loads(out) == [{"n": 0}]  # through the worker: it holds the folder
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    assert str(token_path(settings)) in log
    assert token not in log
