"""Bonferroni and Benjamini-Hochberg, against scipy and by their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from stream.errors import MetricsError
from stream.metrics.drift import DriftResult, adjust_p_values
from stream.metrics.multitest import adjust, benjamini_hochberg, bonferroni

p_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40)


def test_bonferroni_by_definition() -> None:
    p = np.array([0.001, 0.02, 0.3, 0.0, 1.0])
    assert bonferroni(p).tolist() == [0.005, 0.1, 1.0, 0.0, 1.0]


def test_bh_matches_scipy_on_fixed_seed_data() -> None:
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0, 0.01, 10), rng.uniform(size=90)])
    rng.shuffle(p)
    expected = stats.false_discovery_control(p, method="bh")
    assert np.allclose(benjamini_hochberg(p), expected, rtol=0, atol=1e-12)


def test_bh_by_the_step_up_definition() -> None:
    p = np.array([0.04, 0.01, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> m p / rank = 0.04, 0.06, 0.0533.., 0.5 -> running min
    assert benjamini_hochberg(p) == pytest.approx([0.04 * 4 / 3, 0.04, 0.04 * 4 / 3, 0.5])


def test_ties_and_empty() -> None:
    assert benjamini_hochberg([0.02, 0.02]).tolist() == [0.02, 0.02]
    assert benjamini_hochberg([]).size == 0 and bonferroni([]).size == 0


@pytest.mark.parametrize("bad", [[0.5, np.nan], [1.2], [-0.1], [[0.1, 0.2]]])
def test_invalid_p_values_raise(bad: list[object]) -> None:
    with pytest.raises(MetricsError):
        benjamini_hochberg(bad)
    with pytest.raises(MetricsError):
        bonferroni(bad)


def test_unknown_correction_raises() -> None:
    with pytest.raises(MetricsError, match="unknown correction 'holm'"):
        adjust([0.1], "holm")  # type: ignore[arg-type]
    with pytest.raises(MetricsError, match="unknown correction 'holm'"):
        adjust_p_values([], "holm")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(p_lists)
def test_bh_equals_scipy(p: list[float]) -> None:
    expected = stats.false_discovery_control(np.array(p), method="bh")
    assert np.allclose(benjamini_hochberg(p), expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(p_lists)
def test_adjusted_is_at_least_raw_at_most_one_and_monotone(p: list[float]) -> None:
    raw = np.array(p)
    order = np.argsort(raw, kind="stable")
    for adjusted in (bonferroni(raw), benjamini_hochberg(raw)):
        assert np.all(adjusted >= raw)
        assert np.all(adjusted <= 1.0)
        assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(benjamini_hochberg(raw) <= bonferroni(raw) + 1e-15)


# --- adjust_p_values on DriftResults ---------------------------------------------------------


def _ks(feature: str, p: float) -> DriftResult:
    return DriftResult(feature, "ks", 0.1, p, 0.05, p <= 0.05, 500, 100)


def test_bonferroni_changes_the_verdict_and_keeps_the_raw_p_value() -> None:
    results = [_ks("a", 0.001), _ks("b", 0.02), _ks("c", 0.3)]
    adjusted = adjust_p_values(results, "bonferroni")
    assert [r.feature for r in adjusted] == ["a", "b", "c"]
    assert [r.p_value for r in adjusted] == [0.001, 0.02, 0.3]
    assert [r.p_value_adjusted for r in adjusted] == pytest.approx([0.003, 0.06, 0.9])
    assert [r.drifted for r in adjusted] == [True, False, False]
    assert results[1].drifted is True  # inputs untouched


def test_bh_on_results_matches_scipy_and_each_methods_rule() -> None:
    results = [
        _ks("a", 0.01),
        DriftResult("b", "chisquare", 5.0, 0.04, 0.05, True, 500, 100),
        DriftResult("c", "anderson", 2.0, 0.03, 0.1, True, 500, 100),
        _ks("d", 0.5),
    ]
    adjusted = adjust_p_values(results, "bh")
    expected = stats.false_discovery_control([0.01, 0.04, 0.03, 0.5], method="bh")
    assert [r.p_value_adjusted for r in adjusted] == pytest.approx(expected.tolist(), abs=1e-12)
    # chisquare: 0.0533 < 0.05 is False; anderson: 0.0533 < 0.1 is True
    assert [r.drifted for r in adjusted] == [True, False, True, False]


def test_ks_rule_is_inclusive_after_adjustment() -> None:
    adjusted = adjust_p_values([_ks("a", 0.025), _ks("b", 0.025)], "bonferroni")
    assert [r.p_value_adjusted for r in adjusted] == [0.05, 0.05]
    assert [r.drifted for r in adjusted] == [True, True]  # ks: p <= threshold


def test_distance_and_no_verdict_results_are_left_out_of_the_family() -> None:
    distance = DriftResult("d", "psi", 0.3, None, 0.1, True, 500, 100)
    no_verdict = DriftResult("n", "ks", None, None, 0.05, None, 500, 3)
    results = [distance, _ks("a", 0.02), no_verdict, _ks("b", 0.5)]
    adjusted = adjust_p_values(results, "bonferroni")
    assert adjusted[0] == distance and adjusted[2] == no_verdict
    assert adjusted[1].p_value_adjusted == pytest.approx(0.04)  # m = 2, not 4
    assert adjusted[1].drifted is True


def test_none_correction_returns_the_results_unchanged() -> None:
    results = [_ks("a", 0.01), _ks("b", 0.5)]
    assert adjust_p_values(results, "none") == results


@settings(max_examples=100, deadline=None)
@given(p_lists, st.sampled_from(["bonferroni", "bh"]))
def test_correction_never_adds_a_drift_verdict(p: list[float], correction: str) -> None:
    results = [_ks(str(i), v) for i, v in enumerate(p)]
    adjusted = adjust_p_values(results, correction)  # type: ignore[arg-type]
    for before, after in zip(results, adjusted, strict=True):
        assert after.p_value == before.p_value
        assert after.p_value_adjusted is not None and after.p_value_adjusted >= before.p_value
        assert not (after.drifted and not before.drifted)
