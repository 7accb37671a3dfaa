"""Event time per model on the real broker: one model's clock never closes another's windows,
and every consumed prediction is counted in a window or in its ``late_events`` row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stream.sdk.client import MonitorClient
from stream.topics import ensure_topics

from .test_topology_e2e import FAST, T0, ResultsReader, events, expected, wait_for_results
from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration


def as_model(stream: tuple[list[dict[str, Any]], list[dict[str, Any]]],
             model_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    preds, labels = stream
    return ([dict(e, model_id=model_id, request_id=f"{model_id}-{e['request_id']}")
             for e in preds],
            [dict(e, model_id=model_id, request_id=f"{model_id}-{e['request_id']}")
             for e in labels])


def counted(rows: dict[tuple[Any, ...], dict[str, Any]], model_id: str) -> tuple[int, int]:
    """(events counted on time, events counted late) over all the model's windows."""
    on_time = sum(int(doc["value"]) for key, doc in rows.items()
                  if key[0] == model_id and key[2] == "all" and key[4:6] == ("service", "count"))
    late = sum(int(doc["value"]) for key, doc in rows.items()
               if key[0] == model_id and key[4:6] == ("service", "late_events"))
    return on_time, late


def test_a_lagging_model_keeps_its_windows_and_late_events_are_all_counted(
        bootstrap: str, tmp_path: Path) -> None:
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 4}, windows=FAST, store={"kind": "none"},
        metrics={"segments": ["country"], "sample_capacity": 100, "min_sample_size": 10})
    ensure_topics(settings)
    a_preds, a_labels = as_model(events(1_200, seed=61, span_ms=240_000), "a")
    b_preds, b_labels = as_model(events(1_200, seed=62, span_ms=240_000), "b")
    want = expected(settings, a_preds + b_preds, a_labels + b_labels)
    assert {k[0] for k in want} == {"a", "b"}
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    worker = WorkerProcess(config, settings, name="w0")
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        with MonitorClient.from_settings(settings, batch_size=50) as client:
            for event in a_preds:
                client.log_prediction(event)
            for event in a_labels:
                client.log_label(event)
        # A is read first: its clock passes every window of the span on every partition.
        worker.wait_until(lambda s: sum(s["valid"].values()) >= len(a_preds) + len(a_labels),
                          what="model A read")
        with MonitorClient.from_settings(settings, batch_size=50) as client:
            for event in b_preds:  # the same span of event time, seconds later
                client.log_prediction(event)
            for event in b_labels:
                client.log_label(event)
        diff = wait_for_results(reader, want, [worker], timeout=120)
        assert not diff, "\n".join([*diff[:20], worker.diagnose()])
        assert counted(reader.rows, "b") == (len(b_preds), 0)

        # Really late now (B's clock passed these windows): 30 events of B's first window,
        # and 20 of a window B never had on time. Both land in late_events rows.
        template = b_preds[0]
        late = [dict(template, request_id=f"late-{i}", timestamp=T0 + 1_000 + i)
                for i in range(30)]
        late += [dict(template, request_id=f"older-{i}", timestamp=T0 - 120_000 + i)
                 for i in range(20)]
        with MonitorClient.from_settings(settings, batch_size=10) as client:
            for event in late:
                client.log_prediction(event)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and counted(reader.rows, "b")[1] < len(late):
            assert worker.proc.poll() is None, worker.log_path.read_text()[-3000:]
            reader.poll(2)
        late_rows = {k[3]: int(doc["value"]) for k, doc in reader.rows.items()
                     if k[0] == "b" and k[5] == "late_events" and doc["value"]}
        assert late_rows == {T0: 30, T0 - 120_000: 20}, late_rows
        # Nothing consumed is absent from every table: on time + late = produced, per model.
        assert counted(reader.rows, "b") == (len(b_preds), len(late))
        assert counted(reader.rows, "a") == (len(a_preds), 0)
    finally:
        reader.close()
        worker.stop()
