"""The ``ingest`` rows on the real broker, in chDB: what was produced, counted per window."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from stream.client import MonitorClient
from stream.store.embedded import EmbeddedStore
from stream.topics import ensure_topics

from .test_topology_e2e import FAST, T0, ResultsReader
from .workers import WorkerProcess, free_port, make_settings

pytestmark = pytest.mark.integration

N, DUPLICATES, MALFORMED, JUNK, LABELS = 300, 20, 9, 4, 100


def prediction(i: int) -> dict[str, Any]:
    return {"request_id": f"q{i}", "model_id": "m", "model_version": "v1",
            "timestamp": T0 + i * 50_000 // N, "features": {"x": i * 0.5},
            "prediction": i % 2, "probability": (i % 10) / 10}


def ingest(rows: dict[tuple[Any, ...], Any]) -> dict[tuple[str, str, str], float]:
    return {(k[0], k[5], k[6]): v["value"] for k, v in rows.items() if k[4] == "ingest"}


@pytest.mark.parametrize("workers", [1, 2])
def test_ingest_rows_count_what_was_produced(bootstrap: str, tmp_path: Path,
                                             workers: int) -> None:
    """One worker writes chDB (checked after it stops); two (which cannot share an embedded
    store) are checked on the results topic: the same rows."""
    store = {} if workers == 1 else {"kind": "none"}
    settings, config = make_settings(bootstrap, tmp_path, topics={"partitions": 4},
                                     windows=FAST, store=store)
    ensure_topics(settings)
    procs = [WorkerProcess(config, settings, name=f"w{i}",
                           web_port=free_port() if i else None) for i in range(workers)]
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    total = N + LABELS + DUPLICATES + MALFORMED
    want = {("m", "predictions", ""): N, ("m", "late_predictions", ""): 0,
            ("m", "labels_joined", ""): LABELS, ("m", "duplicate_predictions", ""): DUPLICATES,
            ("m", "duplicate_labels", ""): 0, ("m", "rejected", ""): MALFORMED,
            ("m", "rejected", "wrong_type"): MALFORMED,
            ("m", "rejected_share", ""): pytest.approx(MALFORMED / total)}
    try:
        for proc in procs:
            proc.wait_until(lambda s: s is not None, what="worker web server")
        time.sleep(3 if workers > 1 else 0)  # let the group settle on its assignment
        with MonitorClient.from_settings(settings, batch_size=50) as client:
            for i in range(N):
                client.log_prediction(prediction(i))
            for i in range(DUPLICATES):  # a retrying producer
                client.log_prediction(prediction(i))
            for i in range(LABELS):
                client.log_label({"request_id": f"q{i}", "model_id": "m",
                                  "timestamp": T0 + 55_000, "label": i % 2})
        raw = Producer({"bootstrap.servers": bootstrap})
        for i in range(MALFORMED):  # says its model and time: counted in its window
            raw.produce(settings.topics.predictions, key=f"bad{i}".encode(),
                        value=orjson.dumps({**prediction(i), "features": "oops"}))
        for i in range(JUNK):  # nothing to attribute: model _unknown
            raw.produce(settings.topics.predictions, key=f"junk{i}".encode(), value=b"{")
        raw.flush(10)
        deadline = time.monotonic() + 120
        got: dict[tuple[str, str, str], float] = {}
        while time.monotonic() < deadline:
            reader.poll(2)
            got = ingest(reader.rows)
            unknown = sum(v for (m, metric, f), v in got.items()
                          if m == "_unknown" and metric == "rejected" and f == "")
            if {k: got.get(k) for k in want} == want and unknown == JUNK:
                break
        assert {k: got.get(k) for k in want} == want, (got, [p.diagnose() for p in procs])
        assert unknown == JUNK, got
        held = [sorted((p.stats() or {}).get("partitions", {})) for p in procs]
        assert all(held) and len({p for h in held for p in h}) == 4, held  # shared
    finally:
        reader.close()
        for proc in procs:
            proc.stop()
    if workers > 1:
        return
    # What the store holds once the worker let go of it: the same, in the latest view.
    with EmbeddedStore(settings.store) as store:
        rows = store.query(
            "SELECT model_id, metric, feature, value, revision FROM window_metrics_latest "
            "WHERE family = 'ingest'").rows
    stored = {(m, metric, f): v for m, metric, f, v, _ in rows if m == "m"}
    assert stored == want
    assert sum(v for m, metric, f, v, _ in rows
               if m == "_unknown" and metric == "rejected" and f == "not_json") == JUNK
    assert {r for m, metric, f, v, r in rows if m == "m"} == {total}
