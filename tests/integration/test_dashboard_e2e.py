"""Every panel of the provisioned Grafana dashboards has data after the compose demo's run.

The pipeline is the one docker-compose runs, on the real broker with chDB in place of the
ClickHouse server (same migrations, same SQL): the worker with the compose file's metrics
and alert settings, the demo producer publishing the reference and then the traffic. Then
each panel's and variable's query, with Grafana's macros substituted as
``tests/unit/test_compose.py`` does, runs against the rows the worker wrote.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream.config import load_settings
from stream.demo import (
    DEMO_MODEL,
    _wait_for_alert_evaluator,
    _wait_for_windows,
    produce_demo_traffic,
)
from stream.store.embedded import EmbeddedStore
from stream.topics import ensure_topics
from tests.unit.test_compose import COMPOSE, _dashboard_sql, _substitute

from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

WINDOW_S, SPAN_MS = 300, 40 * 60_000
#: The compose worker's settings that are not about where services are.
COMPOSE_ENV = {k: str(v) for k, v in COMPOSE["x-tidewatch-env"].items()
               if not k.startswith(("TIDEWATCH_KAFKA", "TIDEWATCH_STORE"))}


def test_every_dashboard_panel_has_rows_after_the_compose_demo(
        bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"TIDEWATCH_METRICS__SEGMENTS", "TIDEWATCH_METRICS__MODELS"} <= set(COMPOSE_ENV)
    for key, value in COMPOSE_ENV.items():  # the worker process inherits them
        monkeypatch.setenv(key, value)
    _, config = make_settings(bootstrap, tmp_path, windows={
        "size_s": WINDOW_S, "allowed_lateness_s": 10, "idle_partition_timeout_s": 5,
        "revision_interval_s": 1, "tick_interval_s": 0.5})
    settings = load_settings(config)
    assert settings.metrics.model(DEMO_MODEL).protected_attribute == "country"
    assert settings.metrics.model(DEMO_MODEL).reference_path is None  # from the topic only
    ensure_topics(settings)
    now = int(time.time() * 1000)
    start = now - now % (WINDOW_S * 1000) - SPAN_MS
    worker = WorkerProcess(config, settings)
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        summary = produce_demo_traffic(settings, events=6_000, start_ms=start,
                                       span_ms=SPAN_MS)
        assert summary.reference_rows == 5_000
        windows = SPAN_MS // (WINDOW_S * 1000)
        assert _wait_for_windows(settings, windows, summary.labels, worker.proc, timeout=150), (
            worker.diagnose())
        _wait_for_alert_evaluator(settings, windows, worker.proc)
    finally:
        worker.stop()
    empty = []
    with EmbeddedStore(settings.store) as store:
        for title, sql in _dashboard_sql():
            if not store.query(_substitute(sql, model_id=DEMO_MODEL)).rows:
                empty.append(title)
    assert empty == [], f"panels without rows after the demo: {empty}"
