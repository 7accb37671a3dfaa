"""docker-compose.yml, the Dockerfile and Grafana provisioning hang together.

No Docker here: the file is parsed and cross-checked, and every SQL the dashboard runs is
executed against the embedded store (same schema as the server) with Grafana's macros
substituted, so a renamed column or view breaks this test, not the demo.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import pytest
import yaml

from stream.config import StoreSettings, load_settings
from stream.results import WindowResults
from stream.store.embedded import EmbeddedStore
from tests.integration.store.rows import alert, drift_row, metric_row

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
DASHBOARD = orjson.loads((ROOT / "grafana/dashboards/tidewatch.json").read_bytes())
DATASOURCES = yaml.safe_load(
    (ROOT / "grafana/provisioning/datasources/clickhouse.yaml").read_text(encoding="utf-8")
)
PROVIDERS = yaml.safe_load(
    (ROOT / "grafana/provisioning/dashboards/dashboards.yaml").read_text(encoding="utf-8")
)


def test_expected_services_with_health_checks() -> None:
    assert {"kafka", "clickhouse", "grafana", "worker", "demo-producer", "migrate"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:")
    assert (
        "grafana-clickhouse-datasource" in SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    )
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka", "clickhouse", "grafana", "worker"):
        assert "test" in SERVICES[name]["healthcheck"], name
    assert SERVICES["worker"]["command"] == ["tidewatch", "worker"]
    assert SERVICES["demo-producer"]["command"] == ["tidewatch", "demo-produce"]


def test_dependencies_and_volumes_exist() -> None:
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], dependency
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_dockerfile_builds_from_files_that_exist() -> None:
    for name in ("worker", "demo-producer", "migrate"):
        assert SERVICES[name]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert "pip install" in dockerfile
    assert ".venv" in (ROOT / ".dockerignore").read_text(encoding="utf-8")


def _service_port(host_port: str) -> tuple[str, int]:
    parts = urlsplit(host_port if "://" in host_port else f"kafka://{host_port}")
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def test_worker_settings_point_at_services_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    env = SERVICES["worker"]["environment"]
    monkeypatch.delenv("TIDEWATCH_CONFIG", raising=False)
    for key in [k for k in os.environ if k.startswith("TIDEWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = load_settings()
    assert settings.store.kind == "server"
    kafka_host, kafka_port = _service_port(settings.kafka.bootstrap)
    assert kafka_host == "kafka"
    assert (
        f"PLAINTEXT://kafka:{kafka_port}"
        in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert settings.store.url is not None
    ch_host, ch_port = _service_port(settings.store.url.get_secret_value())
    assert (ch_host, ch_port) == ("clickhouse", 8123)
    for name in ("demo-producer", "migrate"):
        assert SERVICES[name]["environment"] == env
    # The worker's own stop bound must end a stuck stop before Docker's SIGKILL does.
    grace = SERVICES["worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > settings.worker.shutdown_timeout_s


def test_grafana_provisioning_matches_compose() -> None:
    (source,) = DATASOURCES["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["host"] in SERVICES
    assert (
        source["jsonData"]["defaultDatabase"]
        == (SERVICES["worker"]["environment"]["TIDEWATCH_STORE__DATABASE"])
    )
    (provider,) = PROVIDERS["providers"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert (ROOT / mounts[provider["options"]["path"]] / "tidewatch.json").is_file()
    uids = {
        t["datasource"]["uid"]
        for p in DASHBOARD["panels"]
        for t in p.get("targets", [])
    }  # fmt: skip
    assert uids == {source["uid"]}


def _dashboard_sql() -> list[tuple[str, str]]:
    queries = [(p["title"], t["rawSql"]) for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    queries += [(f"variable {v['name']}", v["query"]) for v in DASHBOARD["templating"]["list"]]
    return queries


def _substitute(sql: str, model_id: str = "churn", segment: str = "all") -> str:
    """Grafana's part: template variables and the ClickHouse plugin's macros.

    ``percentencode`` is Grafana's ``encodeURIComponentStrict``: everything but letters,
    digits and ``-_.~`` as ``%XX`` of its UTF-8 bytes, which ``quote(safe="-_.~")`` matches.
    """
    sql = sql.replace("${model_id:percentencode}", quote(model_id, safe="-_.~"))
    sql = sql.replace("${segment:percentencode}", quote(segment, safe="-_.~"))
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        r"(\1 >= now64(3, 'UTC') - INTERVAL 2 DAY AND \1 <= now64(3, 'UTC'))",
        sql,
    )
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(\1, INTERVAL 300 SECOND)", sql)
    assert "$" not in sql, f"unsubstituted Grafana macro in: {sql}"
    return sql


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(StoreSettings(path=tmp_path / "chdb"))
    try:
        store.migrate()
        now = (int(time.time() * 1000) // 300_000) * 300_000
        window = {"window_start": now - 3_600_000, "window_end": now - 3_300_000}
        store.write(WindowResults(
            drift=(drift_row(**window), drift_row(**window, feature="income", drifted=None)),
            metrics=(
                metric_row(**window),
                metric_row(**window, family="estimate", metric="cbpe_accuracy"),
                metric_row(**window, family="quality", metric="null_share", feature="age"),
                metric_row(**window, family="service", metric="latency_p95_ms", value=12.5),
                metric_row(**window, family="fairness", metric="demographic_parity_difference",
                           feature="country", value=0.1),
                metric_row(**window, family="ingest", metric="predictions", value=90.0),
                metric_row(**window, family="ingest", metric="rejected", feature="not_json",
                           value=2.0),
            ),
        ))  # fmt: skip
        store.write_alerts([alert(time=now - 1_000)])
        yield store
    finally:
        store.close()


def test_every_dashboard_query_runs_on_the_schema(seeded: EmbeddedStore) -> None:
    queries = _dashboard_sql()
    assert len(queries) >= 10
    empty = []
    for title, sql in queries:
        result = seeded.query(_substitute(sql))
        if not result.rows:
            empty.append(title)
    assert empty == [], f"panels without data on seeded rows: {empty}"


def test_dashboard_reads_the_latest_views() -> None:
    for title, sql in _dashboard_sql():
        tables = set(re.findall(r"FROM\s+(\w+)", sql))
        assert tables <= {
            "feature_drift_latest", "window_metrics_latest", "alerts_current", "alerts",
            "window_metrics",
        }, (title, tables)  # fmt: skip
        if "alerts" in tables:
            assert "FINAL" in sql, title


def test_variables_reach_sql_only_percent_encoded() -> None:
    """Values come from events (segments) or from a link's ``var-segment=``; Grafana's
    ``sqlstring`` doubles quotes but leaves backslashes, and ClickHouse reads ``\\'`` as an
    escaped quote, so ``'${segment:sqlstring}'`` let a value end the string and add SQL."""
    for title, sql in _dashboard_sql():
        uses = re.findall(r"(.{20})\$\{(\w+)(:\w+)?\}(.{2})", sql)
        for before, name, fmt, after in uses:
            assert (fmt, after) == (":percentencode", "')"), (title, name, fmt)
            assert before.endswith("decodeURLComponent('"), (title, name)


def test_a_hostile_segment_stays_a_value(seeded: EmbeddedStore) -> None:
    hostile = "country=\\' OR 1=1 -- "
    (sql,) = [q for t, q in _dashboard_sql() if "statistic IS NOT NULL" in q]
    assert seeded.query(_substitute(sql, segment=hostile)).rows == []
    assert seeded.query(_substitute(sql, segment="all")).rows != []
    # What the dashboard did before: Grafana's sqlstring (quotes doubled, nothing else).
    as_sqlstring = "'" + hostile.replace("'", "''") + "'"
    old = _substitute(sql).replace("decodeURLComponent('all')", as_sqlstring)
    assert seeded.query(old).rows != [], "the old quoting was injectable"
