"""Fairness figures from per-segment states, against hand-computed rates."""

from __future__ import annotations

import pytest

from stream.metrics.fairness import (
    FEWER_THAN_TWO_GROUPS,
    GROUPS_BELOW_MIN_SIZE,
    NO_POSITIVE_PREDICTIONS,
    NOT_CLASSIFICATION,
    fairness_figures,
    fairness_metrics,
    fairness_rows,
)
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


def test_min_group_size_by_hand_with_reasons() -> None:
    """Rates f 12/40 = 0.3, m 30/50 = 0.6, x 1/4 (under 10: left out): parity 0.3, impact
    0.5; TPRs f 9/12 = 0.75 (12 positives), m 10/20 = 0.5 (20): opportunity 0.25 with a
    minimum of 10, NULL with a minimum of 15 (f has 12 labelled positives)."""
    f_dec = [1] * 12 + [0] * 28
    f_lab = [1] * 9 + [0] * 3 + [1] * 3 + [0] * 25  # TP 9, FN 3
    m_dec = [1] * 30 + [0] * 20
    m_lab = [1] * 10 + [0] * 20 + [1] * 10 + [0] * 10  # TP 10, FN 10
    states = {"sex=f": _group(f_dec, f_lab), "sex=m": _group(m_dec, m_lab),
              "sex=x": _group([1, 0, 0, 0], [1, 1, 1, 1])}
    figs = fairness_figures(states, "sex", min_group_size=10)
    assert figs["demographic_parity_difference"] == (pytest.approx(0.3), "")
    assert figs["disparate_impact_ratio"] == (pytest.approx(0.5), "")
    assert figs["equal_opportunity_difference"] == (pytest.approx(0.25), "")
    figs = fairness_figures(states, "sex", min_group_size=15)
    assert figs["demographic_parity_difference"] == (pytest.approx(0.3), "")
    assert figs["equal_opportunity_difference"] == (None, GROUPS_BELOW_MIN_SIZE)
    figs = fairness_figures(states, "sex", min_group_size=45)  # only m is large enough
    assert figs["demographic_parity_difference"] == (None, GROUPS_BELOW_MIN_SIZE)
    rows = fairness_rows(states, "sex", WindowKey("m", "v", "all", 0, 10), 1, 5,
                         min_group_size=45)
    assert {r.reason for r in rows} == {GROUPS_BELOW_MIN_SIZE} and {r.value for r in rows} == {None}


def test_reasons_for_missing_groups_and_zero_rates() -> None:
    assert fairness_figures({"all": _group([1])}, "sex")["demographic_parity_difference"] == (
        None, FEWER_THAN_TWO_GROUPS)
    zero = {"sex=f": _group([0, 0]), "sex=m": _group([0, 0, 0])}
    figs = fairness_figures(zero, "sex")
    assert figs["demographic_parity_difference"] == (0.0, "")
    assert figs["disparate_impact_ratio"] == (None, NO_POSITIVE_PREDICTIONS)
    reg = {"sex=f": WindowState("regression", 1), "sex=m": WindowState("regression", 1)}
    assert fairness_figures(reg, "sex")["equal_opportunity_difference"] == (
        None, NOT_CLASSIFICATION)
