"""The worker's Prometheus endpoint on the real broker: scraped counts equal what was produced."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from stream.sdk.client import MonitorClient
from stream.topics import ensure_topics

from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

N, DUPLICATES, LABELS = 500, 7, 200
MALFORMED = [(b'{"request_id": "t1", "model_id": "m1", "timestamp": 17', "not_json")] * 3 + [
    (orjson.dumps({"model_id": "m1", "timestamp": 1, "features": {}, "prediction": 1}),
     "missing_field")] * 2


def prediction(i: int) -> dict[str, Any]:
    return {"request_id": f"r{i}", "model_id": "m1", "timestamp": 1_700_000_000_000 + i,
            "features": {"x": i * 0.5}, "prediction": i % 2, "probability": (i % 10) / 10}


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        content_type, text = r.headers["Content-Type"], r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return content_type, samples


def test_metrics_endpoint_counts_what_was_produced(bootstrap: str, tmp_path: Path) -> None:
    settings, config = make_settings(bootstrap, tmp_path)
    ensure_topics(settings)
    worker = WorkerProcess(config, settings)
    try:
        with MonitorClient.from_settings(settings, batch_size=50) as client:
            for i in range(N):
                client.log_prediction(prediction(i))
            for i in range(DUPLICATES):  # the same request_id again
                client.log_prediction(prediction(i))
            for i in range(LABELS):
                client.log_label({"request_id": f"r{i}", "model_id": "m1",
                                  "timestamp": 1_700_000_000_000 + N + i, "label": i % 2})
        raw = Producer({"bootstrap.servers": bootstrap})
        for value, _ in MALFORMED:
            raw.produce(settings.topics.predictions, key=b"bad", value=value)
        raw.flush(30)
        worker.wait_until(
            lambda s: s["valid"].get("prediction", 0) >= N + DUPLICATES
            and s["valid"].get("label", 0) >= LABELS
            and sum(s["rejected"].values()) >= len(MALFORMED), what="all events consumed")
        deadline = time.monotonic() + 30
        while True:  # lag reaches 0 once every input partition is read to its end
            content_type, got = scrape(worker.port)
            lag = {k: v for k, v in got.items() if k[0] == "tidewatch_consumer_lag_messages"
                   and dict(k[1])["topic"] in (settings.topics.predictions,
                                               settings.topics.labels)}
            if (len(lag) == 8 and not any(lag.values())) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
        assert len(lag) == 8 and set(lag.values()) == {0.0}, lag

        def value(name: str, **labels: str) -> float:
            return got.get((name, tuple(sorted(labels.items()))), -1.0)

        assert value("tidewatch_ingest_events_total", kind="prediction") == N + DUPLICATES
        assert value("tidewatch_ingest_events_total", kind="label") == LABELS
        assert value("tidewatch_ingest_rejected_events_total", reason="not_json") == 3
        assert value("tidewatch_ingest_rejected_events_total", reason="missing_field") == 2
        messages = {dict(k[1])["topic"]: v for k, v in got.items()
                    if k[0] == "tidewatch_ingest_messages_total"}
        assert messages[settings.topics.predictions] >= len(MALFORMED) + 1  # batched
        assert value("tidewatch_duplicate_events_total", kind="prediction") == DUPLICATES
        assert value("tidewatch_duplicate_events_total", kind="label") == 0
        joined = (value("tidewatch_labels_joined_total", arrival="after_prediction")
                  + value("tidewatch_labels_joined_total", arrival="before_prediction"))
        assert joined == LABELS
        assert value("tidewatch_late_predictions_total") == 0
        open_windows = sum(v for k, v in got.items() if k[0] == "tidewatch_open_windows")
        assert open_windows >= 1  # event time has not passed the window: still open
        assert value("tidewatch_store_write_seconds_count") >= 0
        assert value("tidewatch_alert_changes_total", state="firing") == 0
    finally:
        worker.stop()
