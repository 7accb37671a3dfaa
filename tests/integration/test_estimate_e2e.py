"""The label-free estimate on the real broker: calibrated on the reference, it follows the
realised accuracy of a calibrated and an over-confident model under covariate shift."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stream.merge.references import FileReferences
from stream.metrics.synthetic import SHIFTS, binary_sample
from stream.topics import ensure_topics

from .test_topology_e2e import FAST, T0, ResultsReader, expected, produce, wait_for_results
from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

MODELS = {"cal": "calibrated", "over": "overconfident"}
ROWS = 5_000  # per window and model: the realised accuracy's own noise is ~0.006 (1 s.d.)


def _stream(seed: int) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]],
                                 list[dict[str, Any]]]:
    """Reference events per model; predictions and labels of six shifted 60 s windows."""
    rng = np.random.default_rng(seed)
    ref = binary_sample(rng, 5_000)
    refs = {m: [{"request_id": f"ref-{m}-{i}", "features": {"x1": round(float(ref.x[i, 0]), 5)},
                 "probability": float(ref.scores[col][i]), "label": int(ref.y[i])}
                for i in range(ref.y.size)] for m, col in MODELS.items()}
    preds: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for k, shift in enumerate(SHIFTS):
        d = binary_sample(rng, ROWS, shift)
        for i in range(ROWS):
            ts = T0 + k * 60_000 + i * 60_000 // ROWS
            for m, col in MODELS.items():
                rid = f"{m}-{k}-{i}"
                p = float(d.scores[col][i])
                preds.append({"request_id": rid, "model_id": m, "model_version": "v1",
                              "timestamp": ts, "features": {"x1": round(float(d.x[i, 0]), 5)},
                              "prediction": int(p >= 0.5), "probability": p})
                labels.append({"request_id": rid, "model_id": m, "timestamp": ts + 500,
                               "label": int(d.y[i])})
    return refs, preds, labels


def test_calibrated_estimate_follows_realised_accuracy(bootstrap: str, tmp_path: Path) -> None:
    refs, preds, labels = _stream(seed=0)
    models = {}
    for m, events in refs.items():
        path = tmp_path / f"ref-{m}.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
        models[m] = {"reference_path": str(path)}
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 2}, windows=FAST, store={"kind": "none"},
        metrics={"models": models})
    ensure_topics(settings)
    everything = expected(settings, preds, labels, FileReferences(settings))
    want = {k: v for k, v in everything.items() if k[4] in ("estimate", "performance")}
    worker = WorkerProcess(config, settings)
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        time.sleep(3)
        produce(settings, preds, labels)
        diff = wait_for_results(reader, want, [worker], timeout=300, subset=True)
        assert not diff, "\n".join([*diff[:20], worker.diagnose()])
    finally:
        reader.close()
        worker.stop()

    def value(m: str, k: int, family: str, metric: str) -> float:
        row = reader.rows[(m, "v1", "all", T0 + k * 60_000, family, metric, "")]
        return float(row["value"])

    for m in MODELS:
        for k in range(len(SHIFTS)):
            real = value(m, k, "performance", "accuracy")
            est = value(m, k, "estimate", "expected_accuracy")
            assert value(m, k, "estimate", "estimate_calibrated") == 1.0
            assert abs(est - real) <= 0.015, (m, k, est, real)
            lo = value(m, k, "estimate", "expected_accuracy_lower")
            hi = value(m, k, "estimate", "expected_accuracy_upper")
            assert lo < est < hi
            # the revised gap row equals realised - expected on the labelled rows (all here)
            assert value(m, k, "estimate", "accuracy_gap") == pytest.approx(real - est, abs=1e-9)
    realised = [value("over", k, "performance", "accuracy") for k in range(len(SHIFTS))]
    assert realised[-1] - realised[0] > 0.03  # the shift moved the accuracy, and we followed
