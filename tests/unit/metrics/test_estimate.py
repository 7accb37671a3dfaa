"""Label-free (CBPE-style) estimates: formulas, and agreement with realised values."""

from __future__ import annotations

import numpy as np
import pytest

from stream.metrics.estimate import expected_metrics
from stream.metrics.window import WindowState, performance_metrics


def _state(probs: np.ndarray, decisions: list[int] | None = None) -> WindowState:
    s = WindowState("binary", 1)
    evs = [
        {"request_id": str(i), "probability": float(p)}
        | ({"prediction": decisions[i]} if decisions is not None else {})
        for i, p in enumerate(probs)
    ]
    s.add_predictions(evs)
    return s


def test_expected_accuracy_is_mean_max_p() -> None:
    p = np.array([0.9, 0.2, 0.55, 0.5, 0.01])
    m = expected_metrics(_state(p).estimate, "binary")
    assert m["expected_accuracy"] == pytest.approx(np.mean(np.maximum(p, 1 - p)), abs=1e-12)
    tp = 0.9 + 0.55 + 0.5
    fp = 0.1 + 0.45 + 0.5
    fn = 0.2 + 0.01
    assert m["expected_precision"] == pytest.approx(tp / (tp + fp), abs=1e-12)
    assert m["expected_recall"] == pytest.approx(tp / (tp + fn), abs=1e-12)
    assert m["expected_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)


def test_model_decision_overrides_threshold() -> None:
    p = np.array([0.4, 0.4])
    m = expected_metrics(_state(p, decisions=[1, 1]).estimate, "binary")
    assert m["expected_accuracy"] == pytest.approx(0.4)
    assert m["expected_recall"] == 1.0  # nothing predicted negative -> E[FN] = 0


def test_calibrated_scores_estimate_matches_realised() -> None:
    rng = np.random.default_rng(11)
    p = rng.beta(2, 2, 20_000)
    y = (rng.random(p.size) < p).astype(int)
    s = _state(p)
    evs = [{"request_id": str(i), "probability": float(v)} for i, v in enumerate(p)]
    s.add_labelled(list(zip(evs, y.tolist(), strict=True)))
    est = expected_metrics(s.estimate, "binary")
    real = performance_metrics(s)
    for name in ("accuracy", "precision", "recall", "f1"):
        assert est[f"expected_{name}"] == pytest.approx(real[name], abs=0.015), name


def test_no_scores_no_estimate_and_multiclass() -> None:
    assert expected_metrics(WindowState("binary").estimate, "binary") == {}
    m = WindowState("multiclass", "a")
    m.add_predictions(
        [
            {"request_id": "1", "scores": {"a": 0.7, "b": 0.3}},
            {"request_id": "2", "prediction": "b", "scores": {"a": 0.7, "b": 0.3}},
            {"request_id": "3", "prediction": "c"},
        ]
    )
    out = expected_metrics(m.estimate, "multiclass")
    assert out == {"expected_accuracy": pytest.approx(0.5)}
