"""The server store end to end through clickhouse-connect.

Always against clickhouse-connect's ``chdb://`` client (real ``client.insert`` with column
names and typed values, real ``raw_query``), and against a real server when
``CLICKHOUSE_URL`` is set (e.g. ``http://default:@127.0.0.1:8123``); none runs in CI.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from stream.config import StoreSettings
from stream.errors import StoreError
from stream.results import WindowResults
from stream.store.server import ServerStore

from .rows import alert, drift_row, metric_row

pytestmark = pytest.mark.integration
SERVER_URL = os.environ.get("CLICKHOUSE_URL", "")


@pytest.fixture(
    params=[
        "chdb",
        pytest.param("server", marks=[pytest.mark.server, pytest.mark.skipif(
            not SERVER_URL, reason="needs a ClickHouse server at CLICKHOUSE_URL; none runs in CI"
        )]),
    ]
)  # fmt: skip
def server_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerStore]:
    if request.param == "chdb":
        url, database = f"chdb://{tmp_path / 'chdb'}", "tidewatch"
    else:
        url, database = SERVER_URL, f"tidewatch_test_{uuid.uuid4().hex[:8]}"
    settings = StoreSettings(kind="server", url=SecretStr(url), database=database,
                             batch_size=100, flush_interval_s=0.05)  # fmt: skip
    store = ServerStore(settings)
    store.migrate()
    try:
        yield store
    finally:
        if request.param == "server":
            store.query(f"DROP DATABASE IF EXISTS {database}")
        store.close()


def test_migrate_is_idempotent(server_store: ServerStore) -> None:
    assert server_store.migrate() == []
    names = server_store.query(
        "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
        {"db": server_store.database},
    ).rows
    assert [n for (n,) in names] == sorted([
        "alerts", "alerts_current", "feature_drift", "feature_drift_latest", "schema_migrations",
        "window_metrics", "window_metrics_latest",
    ])  # fmt: skip


def test_typed_insert_round_trip_and_revisions(server_store: ServerStore) -> None:
    hostile = "x'); DROP TABLE feature_drift; -- Größe 🚀"
    results = WindowResults(
        drift=(drift_row(feature=hostile, drifted=None, statistic=None, p_value=math.nan),
               drift_row(feature="psi", statistic=math.inf, revision=1),
               drift_row(feature="psi", statistic=0.3, revision=2)),
        metrics=(metric_row(value=None, coverage=0.0), metric_row(metric="f1", value=0.5)),
    )  # fmt: skip
    server_store.write(results)
    server_store.write(results)  # re-delivery
    fired = alert(id="a-1", feature=hostile)
    server_store.write_alerts(
        [fired, fired, alert(id="a-2", state="resolved", time=fired.time + 1)]
    )
    server_store.flush(timeout_s=30)
    drift = server_store.query(
        "SELECT feature, statistic, p_value, drifted, revision, "
        "toUnixTimestamp64Milli(window_start) AS ws FROM feature_drift_latest ORDER BY feature"
    ).rows
    first = drift_row()
    assert drift[0] == ("psi", 0.3, first.p_value, 1, 2, first.window_start)
    assert drift[1][0] == hostile and drift[1][1] is None and math.isnan(drift[1][2])
    assert drift[1][3] is None
    metrics = server_store.query(
        "SELECT metric, value, coverage FROM window_metrics_latest ORDER BY metric"
    ).rows
    assert metrics == [("accuracy", None, 0.0), ("f1", 0.5, metric_row().coverage)]
    alerts = server_store.query("SELECT id, feature, state FROM alerts FINAL ORDER BY id").rows
    assert alerts == [("a-1", hostile, "firing"), ("a-2", None, "resolved")]



def test_read_only_queries_cannot_write_or_leave_the_store(server_store: ServerStore) -> None:
    """readonly=1 travels as a request setting (what the worker's /sql runs with)."""
    if not server_store._per_query_settings:  # chdb:// would leave the session read-only
        with pytest.raises(StoreError, match="need a ClickHouse server"):
            server_store.query_read_only("SELECT 1")
        return
    assert server_store.query_read_only("SELECT getSetting('readonly') AS r").rows == [(1,)]
    assert server_store.query("SELECT getSetting('readonly') AS r").rows == [(0,)]
    for sql in ("INSERT INTO alerts SELECT * FROM alerts",
                "SELECT * FROM file('/etc/hostname', 'LineAsString')",
                "SELECT 1 SETTINGS readonly = 0"):
        with pytest.raises(StoreError, match="READONLY"):
            server_store.query_read_only(sql)
