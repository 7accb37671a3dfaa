"""Alerts on the real broker: real worker processes, the alert topic and the store.

One worker run carries three SEA models (tests/sea.py): a pure concept change, a covariate
shift that stops, and a stationary stream; a second run kills the worker with SIGKILL
between an alert's firing and its resolution.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from stream.alerts.messages import decode_alert
from stream.alerts.tail import tail_alerts
from stream.config import Settings
from stream.results import AlertRecord
from stream.sdk.client import MonitorClient
from stream.store.commands import run_sql
from stream.topics import ensure_topics
from tests.sea import T0, WINDOW_MS, reference_events, sea_events

from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

FAST = {"size_s": 60, "allowed_lateness_s": 5, "idle_partition_timeout_s": 4,
        "revision_interval_s": 1, "tick_interval_s": 0.5}
PER_WINDOW = 300


def at(window: int, offset_ms: int = 0) -> int:
    return T0 + window * WINDOW_MS + offset_ms


def window_index(alert: AlertRecord) -> int:
    return (alert.window_start - T0) // WINDOW_MS


class AlertReader:
    """Every message of the alert topic, in order (duplicates kept, to count them)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap,
                                  "group.id": f"alerts-{time.time()}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.subscribe([topic])
        self.alerts: list[AlertRecord] = []

    def poll(self, seconds: float) -> list[AlertRecord]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.value():
                alert = decode_alert(msg.value() or b"")
                assert msg.key() == alert.fingerprint.encode()
                self.alerts.append(alert)
        return self.alerts

    def wait_for(self, predicate: Any, workers: list[WorkerProcess],
                 timeout: float = 150) -> list[AlertRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in workers:
                assert worker.proc.poll() is None, worker.log_path.read_text()[-3000:]
            if predicate(self.poll(1)):
                return self.alerts
        raise AssertionError(f"alerts so far: {[a.message for a in self.alerts]}\n"
                             + "\n".join(w.diagnose() for w in workers))

    def close(self) -> None:
        self.consumer.close()


def setup(bootstrap: str, tmp_path: Path, models: list[str]) -> tuple[Settings, Path]:
    refs = {}
    for i, model in enumerate(models):
        path = tmp_path / f"reference-{model}.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e)
                                    for e in reference_events(model, 3000, seed=100 + i)))
        refs[model] = {"reference_path": str(path)}
    settings, config = make_settings(bootstrap, tmp_path, windows=FAST,
                                     metrics={"models": refs, "min_sample_size": 30})
    ensure_topics(settings)
    return settings, config


def produce(settings: Settings, streams: list[tuple[list[dict[str, Any]],
                                                    list[dict[str, Any]]]]) -> None:
    """All models interleaved in event-time order, each label right after its prediction."""
    pairs = sorted((p["timestamp"], p["request_id"], p, lab)
                   for preds, labels in streams for p, lab in zip(preds, labels, strict=True))
    with MonitorClient.from_settings(settings, batch_size=200) as client:
        for _, _, prediction, label in pairs:
            client.log_prediction(prediction)
            client.log_label(label)


def evaluated(worker: WorkerProcess, windows: int) -> bool:
    stats = worker.stats() or {}
    return int(stats.get("alerts", {}).get("windows", 0)) >= windows


def stored_alerts(settings: Settings) -> list[dict[str, Any]]:
    """The alerts table, through the running worker's /sql (it holds the embedded store)."""
    rows: list[dict[str, Any]] = orjson.loads(run_sql(
        settings, "SELECT id, fingerprint, state, window_start FROM alerts FINAL "
                  "ORDER BY window_start, id", "json"))
    return rows


def test_concept_change_covariate_shift_and_stationary(bootstrap: str, tmp_path: Path) -> None:
    settings, config = setup(bootstrap, tmp_path, ["concept", "shift", "steady"])
    windows = range(14)
    concept = sea_events("concept", windows, PER_WINDOW, 1, concept=(at(6, 20_000), at(10)))
    shift = sea_events("shift", windows, PER_WINDOW, 2, shift=(at(5), at(9)))
    steady = sea_events("steady", windows, PER_WINDOW, 3)
    worker = WorkerProcess(config, settings)
    reader = AlertReader(bootstrap, settings.topics.alerts)
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        produce(settings, [concept, shift, steady])
        worker.wait_until(lambda s: evaluated(worker, 3 * len(windows)), timeout=240,
                          what="every window evaluated")
        alerts = reader.wait_for(
            lambda got: {(a.model_id, a.state) for a in got} >= {
                ("concept", "firing"), ("concept", "resolved"),
                ("shift", "firing"), ("shift", "resolved")}, [worker])
        time.sleep(3)
        alerts = reader.poll(2)
        by_model = {m: [a for a in alerts if a.model_id == m]
                    for m in ("concept", "shift", "steady")}
        assert by_model["steady"] == [], [a.message for a in by_model["steady"]]

        concept_alerts = by_model["concept"]
        assert all(window_index(a) >= 6 for a in concept_alerts), [
            a.message for a in concept_alerts]
        fired = [a for a in concept_alerts if a.state == "firing"]
        assert {a.rule for a in fired} <= {"performance_drop", "concept_drift"}
        assert min(window_index(a) for a in fired) in (6, 7)
        assert all(a.state == "resolved" for a in concept_alerts
                   if window_index(a) >= 10)

        shift_alerts = by_model["shift"]
        assert all(window_index(a) >= 5 for a in shift_alerts)
        drift = [a for a in shift_alerts if a.rule == "dataset_drift" and a.state == "firing"]
        assert len(drift) == 1
        assert {c.name for c in drift[0].contributors[:2]} == {"x1", "x2"}
        assert "x1" in drift[0].message
        assert any(a.rule == "dataset_drift" and a.state == "resolved" for a in shift_alerts)

        # Each state change once on the topic and once in the table.
        assert Counter(a.id for a in alerts).most_common(1)[0][1] == 1
        stored = stored_alerts(settings)
        assert sorted(r["id"] for r in stored) == sorted(a.id for a in alerts)

        out = io.StringIO()  # what `tidewatch alerts tail --from-beginning` prints
        assert tail_alerts(settings, from_beginning=True, limit=len(alerts), timeout_s=30,
                           out=out) == len(alerts)
        assert out.getvalue().splitlines() == [a.message for a in alerts]
    finally:
        reader.close()
        worker.stop()


def test_sigkill_between_firing_and_resolving(bootstrap: str, tmp_path: Path) -> None:
    settings, config = setup(bootstrap, tmp_path, ["shift"])
    first = sea_events("shift", range(9), PER_WINDOW, 4, shift=(at(3), at(9)))
    rest = sea_events("shift", range(9, 16), PER_WINDOW, 4)
    worker = WorkerProcess(config, settings, name="w", data_slot="w")
    reader = AlertReader(bootstrap, settings.topics.alerts)
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        produce(settings, [first])
        reader.wait_for(lambda got: any(a.state == "firing" for a in got), [worker])
        worker.kill()
        worker = WorkerProcess(config, settings, name="w2", data_slot="w")
        worker.wait_until(lambda s: s is not None, what="restarted worker")
        produce(settings, [rest])
        worker.wait_until(lambda s: evaluated(worker, 1), what="windows after the restart")
        alerts = reader.wait_for(
            lambda got: {a.rule for a in got if a.state == "resolved"}
            >= {a.rule for a in got if a.state == "firing"}, [worker], timeout=200)
        time.sleep(5)
        alerts = reader.poll(2)
        changes = Counter((a.fingerprint, a.state, a.window_start) for a in alerts)
        assert max(changes.values()) == 1, changes  # no refire, nothing sent twice
        for fingerprint in {a.fingerprint for a in alerts}:
            states = [a.state for a in alerts if a.fingerprint == fingerprint]
            assert states == ["firing", "resolved"], states
        stored = stored_alerts(settings)
        assert sorted(r["id"] for r in stored) == sorted(a.id for a in alerts)
    finally:
        reader.close()
        worker.stop()
