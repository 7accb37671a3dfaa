"""Stream to the embedded ClickHouse (chDB): the latest-revision views equal the offline run.

While the worker runs it owns the chDB folder, so queries go through its ``POST /sql``; after
it stops, ``tidewatch sql`` opens the folder itself. Both paths are exercised.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.store.commands import run_sql
from stream.topics import ensure_topics

from .test_topology_e2e import FAST, events, expected, produce
from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

METRICS_SQL = """
SELECT model_id, model_version, segment, toUnixTimestamp64Milli(window_start) AS window_start,
       toUnixTimestamp64Milli(window_end) AS window_end, family, metric, feature, value,
       sample_size, labelled_count, coverage, revision, reason
FROM window_metrics_latest
WHERE family != 'concept'
"""
DRIFT_SQL = """
SELECT model_id, model_version, segment, toUnixTimestamp64Milli(window_start) AS window_start,
       toUnixTimestamp64Milli(window_end) AS window_end, feature, method, statistic, p_value,
       p_value_adjusted, threshold, drifted, reference_size, current_size, revision
FROM feature_drift_latest
"""


def rows(settings: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for sql, family in ((METRICS_SQL, None), (DRIFT_SQL, "drift")):
        for doc in orjson.loads(run_sql(settings, sql, "json")):
            for name in ("statistic", "value"):
                if isinstance(doc.get(name), str):
                    doc[name] = float(doc[name])
            if family == "drift":
                doc["drifted"] = None if doc["drifted"] is None else bool(doc["drifted"])
            key = (doc["model_id"], doc["model_version"], doc["segment"], doc["window_start"],
                   doc.get("family", "drift"), doc.get("metric", ""), doc["feature"])
            out[key] = doc
    return out


def mismatches(got: dict[tuple[Any, ...], Any], want: dict[tuple[Any, ...], Any]) -> list[str]:
    out = [f"missing {k}" for k in want if k not in got]
    out += [f"unexpected {k}" for k in got if k not in want]
    out += [f"{k}: {got[k]} != {v}" for k, v in want.items()
            if k in got and got[k] != pytest.approx(v, nan_ok=True)]
    return out


def test_stream_to_chdb_equals_offline(bootstrap: str, tmp_path: Path) -> None:
    reference = tmp_path / "reference.jsonl"
    ref_events, _ = events(300, seed=99)
    reference.write_bytes(b"\n".join(orjson.dumps(e) for e in ref_events))
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 2}, windows=FAST,
        store={"kind": "embedded", "flush_interval_s": 0.2},
        metrics={"segments": ["country"], "sample_capacity": 200, "min_sample_size": 10,
                 "models": {"m": {"reference_path": str(reference)}}})
    ensure_topics(settings)
    preds, labels = events(900, seed=31)
    want = expected(settings, preds, labels)
    worker = WorkerProcess(config, settings)
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        produce(settings, preds, labels)
        deadline = time.monotonic() + 150
        diff = ["no query yet"]
        while diff and time.monotonic() < deadline:
            time.sleep(2)
            diff = mismatches(rows(settings), want)  # through the worker's /sql
        assert not diff, "\n".join(diff[:20])
    finally:
        worker.stop()
    direct = rows(settings)  # the folder is free again: opened by this process
    assert not mismatches(direct, want)
    history = orjson.loads(run_sql(
        settings, "SELECT count() AS n, uniqExact(revision) AS revisions FROM window_metrics "
        "WHERE family = 'performance' AND metric = 'accuracy' AND segment = 'all'", "json"))
    assert history[0]["revisions"] > 1, "late labels must have produced revisions"
