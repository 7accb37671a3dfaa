"""Fairness figures from per-segment states, against hand-computed rates."""

from __future__ import annotations

import pytest

from stream.metrics.fairness import fairness_metrics, fairness_rows
from stream.metrics.window import WindowState
from stream.results import WindowKey


def _group(decisions: list[int], labels: list[int] | None = None) -> WindowState:
    s = WindowState("binary", 1)
    evs = [{"request_id": str(i), "prediction": d} for i, d in enumerate(decisions)]
    s.add_predictions(evs)
    if labels is not None:
        s.add_labelled(list(zip(evs, labels, strict=True)))
    return s


def test_parity_impact_and_opportunity() -> None:
    states = {
        "all": _group([1] * 10),
        "sex=f": _group([1, 1, 0, 0, 0], [1, 1, 1, 0, 0]),  # rate 0.4, TPR 2/3
        "sex=m": _group([1, 1, 1, 1, 0], [1, 1, 0, 0, 1]),  # rate 0.8, TPR 2/3
        "sex=other": _group([0] * 5),  # folded bucket: not a group
        "age=young": _group([0, 0]),  # another attribute
    }
    m = fairness_metrics(states, "sex")
    assert m["demographic_parity_difference"] == pytest.approx(0.4)
    assert m["disparate_impact_ratio"] == pytest.approx(0.5)
    assert m["equal_opportunity_difference"] == pytest.approx(0.0)
    rows = fairness_rows(states, "sex", WindowKey("m", "v", "sex=f", 0, 10), 2, 5)
    assert {r.metric for r in rows} == set(m)
    assert all(r.segment == "all" and r.feature == "sex" and r.family == "fairness" for r in rows)
    assert rows[0].sample_size == 10 and rows[0].labelled_count == 10


def test_undefined_cases() -> None:
    one = {"sex=f": _group([1, 0])}
    assert set(fairness_metrics(one, "sex").values()) == {None}
    zero = {"sex=f": _group([0, 0]), "sex=m": _group([0, 0, 0])}
    m = fairness_metrics(zero, "sex")
    assert m["demographic_parity_difference"] == 0.0
    assert m["disparate_impact_ratio"] is None
    assert m["equal_opportunity_difference"] is None  # no labels yet
    small = {"sex=f": _group([1] * 50), "sex=m": _group([0] * 3)}
    assert (
        fairness_metrics(small, "sex", min_group_size=30)["demographic_parity_difference"] is None
    )


def test_multiclass_uses_the_positive_label() -> None:
    def grp(pred: list[str], truth: list[str]) -> WindowState:
        s = WindowState("multiclass", "yes")
        evs = [{"request_id": str(i), "prediction": p} for i, p in enumerate(pred)]
        s.add_predictions(evs)
        s.add_labelled(list(zip(evs, truth, strict=True)))
        return s

    states = {
        "g=a": grp(["yes", "no", "maybe"], ["yes", "yes", "no"]),
        "g=b": grp(["yes", "yes"], ["yes", "no"]),
    }
    m = fairness_metrics(states, "g")
    assert m["demographic_parity_difference"] == pytest.approx(1 - 1 / 3)
    assert m["equal_opportunity_difference"] == pytest.approx(0.5)
