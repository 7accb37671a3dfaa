"""Known answers for realised performance, against textbook formulas, numpy and scipy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from stream.metrics.performance import performance_metrics, roc_auc
from stream.metrics.window import WindowState


def _binary_state(probs: list[float], labels: list[Any], capacity: int = 5_000) -> WindowState:
    s = WindowState("binary", 1, sample_capacity=capacity)
    evs = [{"request_id": f"r{i}", "probability": p} for i, p in enumerate(probs)]
    s.add_predictions(evs)
    s.add_labelled(list(zip(evs, labels, strict=True)))
    return s


def test_binary_textbook_values() -> None:
    probs = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.7, 0.4]
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    m = performance_metrics(_binary_state(probs, labels))
    # decisions at 0.5: 1 1 0 1 0 0 1 0 -> tp=3 fp=1 tn=3 fn=1
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 3, 1)
    assert m["accuracy"] == 0.75 and m["precision"] == 0.75 and m["recall"] == 0.75
    assert m["f1"] == 0.75
    y, p = np.array(labels), np.array(probs)
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert m["log_loss"] == pytest.approx(ll, abs=1e-12)
    u = mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert m["roc_auc"] == pytest.approx(u / (4 * 4), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), min_size=2, max_size=40),
    data=st.data(),
)
def test_roc_auc_equals_mann_whitney_with_ties(scores: list[float], data: Any) -> None:
    y = np.array(data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores))))
    s = np.array(scores)
    auc = roc_auc(s, y.astype(float))
    if y.all() or not y.any():
        assert auc is None
    else:
        u = mannwhitneyu(s[y], s[~y]).statistic
        assert auc == pytest.approx(u / (y.sum() * (~y).sum()), abs=1e-12)


def test_one_class_only_and_undefined_ratios() -> None:
    m = performance_metrics(_binary_state([0.2, 0.3, 0.4], [0, 0, 0]))
    assert m["roc_auc"] is None
    assert m["precision"] is None and m["recall"] is None and m["f1"] is None
    assert m["accuracy"] == 1.0


def test_log_loss_is_clipped() -> None:
    m = performance_metrics(_binary_state([0.0, 1.0], [1, 0]))
    hi = 1 - 1e-15
    expected = (-math.log(1e-15) - math.log1p(-hi)) / 2
    assert m["log_loss"] == pytest.approx(expected, abs=1e-12)
    assert m["log_loss"] is not None and m["log_loss"] < 35  # not inf


def test_auc_from_sample_past_capacity_is_close() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(4000) < 0.4
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    exact = roc_auc(p, y.astype(float))
    m = performance_metrics(_binary_state(p.tolist(), y.astype(int).tolist(), capacity=1000))
    assert exact is not None and m["roc_auc"] is not None
    assert abs(m["roc_auc"] - exact) < 0.04  # ~4 standard errors at 1000 sampled pairs


def test_multiclass_macro_against_hand_computation() -> None:
    s = WindowState("multiclass", "a")
    truth = ["a", "a", "b", "b", "c", "c"]
    pred = ["a", "b", "b", "b", "a", "c"]
    evs = [{"request_id": str(i), "prediction": p} for i, p in enumerate(pred)]
    s.add_predictions(evs)
    s.add_labelled(list(zip(evs, truth, strict=True)))
    m = performance_metrics(s)
    # per class precision: a 1/2, b 2/3, c 1/1; recall: a 1/2, b 2/2, c 1/2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3, abs=1e-12)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3, abs=1e-12)
    f1 = [2 * 1 / (2 + 2), 2 * 2 / (3 + 2), 2 * 1 / (1 + 2)]
    assert m["f1"] == pytest.approx(np.mean(f1), abs=1e-12)
    assert m["log_loss"] is None


def _regression(pred: list[float], y: list[float]) -> dict[str, float | None]:
    s = WindowState("regression")
    evs = [{"request_id": str(i), "prediction": p} for i, p in enumerate(pred)]
    s.add_predictions(evs)
    s.add_labelled(list(zip(evs, y, strict=True)))
    return performance_metrics(s)


def test_regression_against_numpy() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(10, 3, 500)
    p = y + rng.normal(0.5, 1, 500)
    y[:5] = 0.0
    m = _regression(p.tolist(), y.tolist())
    e = p - y
    nz = y != 0
    assert m["mae"] == pytest.approx(np.mean(np.abs(e)), abs=1e-9)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)), abs=1e-9)
    assert m["mean_error"] == pytest.approx(np.mean(e), abs=1e-9)
    assert m["mape"] == pytest.approx(np.mean(np.abs(e[nz]) / np.abs(y[nz])), abs=1e-9)
    r2 = 1 - np.sum(e**2) / np.sum((y - y.mean()) ** 2)
    assert m["r2"] == pytest.approx(r2, abs=1e-9)


def test_regression_edge_cases() -> None:
    const = _regression([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert const["r2"] is None  # constant labels
    zeros = _regression([1.0, 2.0], [0.0, 0.0])
    assert zeros["mape"] is None and zeros["mae"] == 1.5
    # huge offset: naive sum(y^2) - sum(y)^2/n cancels to garbage; exact sums do not
    y = [1e9 + v for v in (0.0, 1.0, 2.0, 3.0)]
    p = [1e9 + v for v in (0.0, 1.0, 2.0, 4.0)]
    big = _regression(p, y)
    assert big["r2"] == pytest.approx(1 - 1 / 5, abs=1e-12)
    huge = _regression([1e200, -1e200], [0.0, 1.0])
    assert huge["mae"] == pytest.approx(1e200, rel=1e-12)
    assert huge["rmse"] == math.inf  # e**2 overflows: reported, not hidden
    nonfinite = _regression([math.inf, 1.0], [1.0, 1.0])  # inf predictions are not scored
    assert nonfinite["mae"] == 0.0
