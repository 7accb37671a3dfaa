"""column_drift, default_method and dataset_drift: the entry points the engine calls."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

import stream.metrics.drift_tests
from stream.errors import MetricsError
from stream.metrics.drift import (
    DriftResult,
    available_methods,
    column_drift,
    dataset_drift,
    default_method,
)

TOL = 1e-9


def _rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- the result type ------------------------------------------------------------------------


def test_drift_result_shape_is_the_contract() -> None:
    fields = [(f.name, f.type) for f in dataclasses.fields(DriftResult)]
    assert fields == [
        ("feature", "str"),
        ("method", "str"),
        ("statistic", "float | None"),
        ("p_value", "float | None"),
        ("threshold", "float"),
        ("drifted", "bool | None"),
        ("reference_size", "int"),
        ("current_size", "int"),
        ("p_value_adjusted", "float | None"),
    ]
    result = DriftResult("f", "ks", 0.1, 0.5, 0.05, False, 10, 10)
    assert result.p_value_adjusted is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.drifted = True  # type: ignore[misc]


# --- default_method: Evidently's _get_default_stattest, row by row --------------------------


@pytest.mark.parametrize(
    ("n", "u", "numeric", "expected"),
    [
        # n <= 1000, numerical, u > 5: KS
        (1000, 6, True, "ks"),
        (1, 1000, True, "ks"),
        # n <= 1000, numerical with u <= 5, or categorical, u > 2: chi-square
        (1000, 5, True, "chisquare"),
        (1000, 3, True, "chisquare"),
        (1000, 3, False, "chisquare"),
        (1000, 50, False, "chisquare"),
        # same, u <= 2: Z-test
        (1000, 2, True, "z"),
        (1000, 2, False, "z"),
        (10, 1, False, "z"),
        # n > 1000, numerical, u > 5: Wasserstein
        (1001, 6, True, "wasserstein"),
        # n > 1000, numerical with u <= 5, or categorical: Jensen-Shannon
        (1001, 5, True, "jensenshannon"),
        (1001, 2, True, "jensenshannon"),
        (1001, 2, False, "jensenshannon"),
        (10**6, 500, False, "jensenshannon"),
    ],
)
def test_default_method_table(n: int, u: int, numeric: bool, expected: str) -> None:
    assert default_method(n, u, numeric) == expected


def test_default_method_refuses_negative_sizes() -> None:
    with pytest.raises(MetricsError):
        default_method(-1, 3, True)


def test_default_path_picks_and_runs_the_method() -> None:
    rng = _rng()
    small_ref, big_ref = rng.normal(size=1000), rng.normal(size=1001)
    cur = rng.normal(size=200)
    assert column_drift("x", small_ref, cur).method == "ks"
    big = column_drift("x", big_ref, cur)
    assert big.method == "wasserstein" and big.p_value is None
    assert column_drift("c", {"a": 600, "b": 400}, {"a": 50, "b": 50}).method == "z"
    assert column_drift("c", {"a": 6000, "b": 4000}, {"a": 50, "b": 50}).method == "jensenshannon"


def test_u_counts_values_of_both_sides_after_cleaning() -> None:
    ref = np.array([1.0, 2.0, 3.0, np.nan, np.inf] * 40)
    cur_same = np.array([1.0, 2.0, 3.0] * 20)
    cur_new = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * 10)
    assert column_drift("x", ref, cur_same).method == "chisquare"  # u = 3
    assert column_drift("x", ref, cur_new).method == "ks"  # u = 6 over both sides
    binary = column_drift("x", np.array([0.0, 1.0, np.nan] * 50), np.array([1.0, 0.0] * 20))
    assert binary.method == "z"


def test_numeric_column_with_few_values_is_tested_like_its_counts() -> None:
    rng = _rng(8)
    ref = rng.choice([0.0, 1.0, 2.0], size=700, p=[0.5, 0.3, 0.2])
    cur = rng.choice([0.0, 1.0, 2.0], size=120, p=[0.4, 0.3, 0.3])
    numeric = column_drift("x", ref, cur)
    counts = column_drift(
        "x",
        {str(v): int((ref == v).sum()) for v in (0.0, 1.0, 2.0)},
        {str(v): int((cur == v).sum()) for v in (0.0, 1.0, 2.0)},
    )
    assert numeric.method == counts.method == "chisquare"
    assert numeric.p_value == pytest.approx(counts.p_value, abs=TOL)
    expected = np.bincount(ref.astype(int)) * 120 / 700
    chi = stats.chisquare(np.bincount(cur.astype(int)), expected)
    assert numeric.p_value == pytest.approx(chi.pvalue, abs=TOL)


def test_reference_size_of_a_sample_drives_the_rule() -> None:
    rng = _rng(2)
    sample, cur = rng.normal(size=500), rng.normal(size=300)
    assert column_drift("x", sample, cur).method == "ks"
    from_big = column_drift("x", sample, cur, reference_size=50_000)
    assert from_big.method == "wasserstein"
    assert from_big.reference_size == 500  # what the test used
    assert column_drift("x", sample, cur, reference_size=1000).method == "ks"


def test_explicit_method_and_threshold() -> None:
    rng = _rng(3)
    ref, cur = rng.normal(size=400), rng.normal(0.15, 1, size=300)
    default = column_drift("x", ref, cur, method="wasserstein")
    assert default.threshold == 0.1
    strict = column_drift("x", ref, cur, method="wasserstein", threshold=1.0)
    assert strict.threshold == 1.0 and strict.drifted is False
    assert strict.statistic == default.statistic
    loose = column_drift("x", ref, cur, method="wasserstein", threshold=0.0)
    assert loose.drifted is True
    assert column_drift("x", ref, cur, method="ed").method == "energy"


@pytest.mark.parametrize("method", available_methods())
def test_every_method_returns_plain_python_types(method: str) -> None:
    rng = _rng(4)
    if method == "fisher_exact":
        ref, cur = (rng.random(300) < 0.4).astype(float), (rng.random(100) < 0.5).astype(float)
    else:
        ref, cur = rng.normal(size=300), rng.normal(0.3, 1, size=100)
    res = column_drift("x", ref, cur, method=method)
    assert type(res.drifted) is bool
    assert type(res.statistic) is float
    assert res.p_value is None or type(res.p_value) is float
    spec = stream.metrics.drift_tests.get_method(method)
    assert (res.p_value is None) is (spec.kind == "distance")


# --- no verdict -------------------------------------------------------------------------------


def _assert_no_verdict(res: DriftResult, method: str) -> None:
    assert res.method == method
    assert (res.statistic, res.p_value, res.drifted) == (None, None, None)


def test_all_null_current_has_no_verdict() -> None:
    ref = _rng().normal(size=100)
    cur = np.array([np.nan, None, np.inf, -np.inf] * 20, dtype=object)
    res = column_drift("x", ref, cur)
    _assert_no_verdict(res, "ks")
    assert (res.reference_size, res.current_size) == (100, 0)


def test_empty_reference_has_no_verdict() -> None:
    res = column_drift("x", np.array([]), _rng().normal(size=100), method="psi")
    _assert_no_verdict(res, "psi")
    _assert_no_verdict(column_drift("c", {}, {"a": 100}), "z")
    _assert_no_verdict(column_drift("c", {"a": 0}, {"a": 100}), "z")


def test_below_min_sample_size_has_no_verdict_at_it_has_one() -> None:
    rng = _rng(5)
    ref = rng.normal(size=500)
    cur = rng.normal(3.0, 1.0, size=30)
    _assert_no_verdict(column_drift("x", ref, cur[:29]), "ks")
    assert column_drift("x", ref, cur).drifted is True
    assert column_drift("x", ref, cur[:5], min_sample_size=5).drifted is True
    counts = column_drift("c", {"a": 500, "b": 500}, {"a": 10, "b": 9})
    _assert_no_verdict(counts, "z")
    assert counts.current_size == 19


def test_nan_and_infinities_are_dropped_like_nulls() -> None:
    rng = _rng(6)
    ref, cur = rng.normal(size=300), rng.normal(0.2, 1, size=200)
    dirty_ref = np.concatenate([ref, [np.nan, np.inf, -np.inf]])
    dirty_cur = np.concatenate([[np.inf], cur, [np.nan, -np.inf]])
    for method in ("ks", "wasserstein", "psi", "jensenshannon", "anderson"):
        clean = column_drift("x", ref, cur, method=method)
        dirty = column_drift("x", dirty_ref, dirty_cur, method=method)
        assert dirty == clean, method
    assert column_drift("x", dirty_ref, dirty_cur).current_size == 200


def test_constant_columns() -> None:
    same = column_drift("x", np.full(200, 4.0), np.full(50, 4.0))
    assert (same.method, same.p_value, same.drifted) == ("z", 1.0, False)
    moved = column_drift("x", np.full(200, 4.0), np.full(50, 5.0))
    assert moved.method == "z" and moved.drifted is True
    for method, value in (("ks", 0.0), ("wasserstein", 0.0), ("psi", 0.0), ("hellinger", 0.0)):
        res = column_drift("x", np.full(200, 4.0), np.full(50, 4.0), method=method)
        assert res.statistic == pytest.approx(value, abs=TOL) and res.drifted is False, method


def test_one_category() -> None:
    res = column_drift("c", {"only": 500}, {"only": 80})
    assert (res.method, res.p_value, res.drifted) == ("z", 1.0, False)
    js = column_drift("c", {"only": 5000}, {"only": 80})
    assert (js.method, js.statistic, js.drifted) == ("jensenshannon", 0.0, False)
    # chi-square is undefined with one category (0 degrees of freedom): no verdict
    _assert_no_verdict(
        column_drift("c", {"only": 500}, {"only": 80}, method="chisquare"), "chisquare"
    )


def test_categories_on_one_side_only() -> None:
    new = column_drift("c", {"a": 500, "b": 300, "c": 200}, {"a": 40, "b": 30, "d": 30})
    assert new.method == "chisquare"
    assert (new.statistic, new.p_value, new.drifted) == (math.inf, 0.0, True)
    gone = column_drift("c", {"a": 5000, "b": 3000, "c": 2000}, {"a": 60, "b": 40})
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.6, 0.4, 0.0])
    m = (p + q) / 2
    js = math.sqrt((np.sum(p * np.log(p / m)) + np.sum(q[:2] * np.log(q[:2] / m[:2]))) / 2)
    assert gone.method == "jensenshannon"
    assert gone.statistic == pytest.approx(js, abs=TOL) and gone.drifted is True


def test_huge_values_give_the_scale_free_answers_of_the_unscaled_data() -> None:
    rng = _rng(7)
    ref, cur = rng.normal(size=400), rng.normal(0.2, 1.1, size=300)
    big_ref, big_cur = np.ldexp(ref, 996), np.ldexp(cur, 996)  # about 1e300
    with np.errstate(over="ignore"):
        assert np.std(big_ref) == math.inf  # why the rescaling exists
    for method in available_methods():
        if method == "fisher_exact":
            continue
        small = column_drift("x", ref, cur, method=method)
        big = column_drift("x", big_ref, big_cur, method=method)
        if method == "energy":  # unit of sqrt(value)
            assert big.statistic == pytest.approx(math.ldexp(small.statistic, 498), rel=1e-12)
        else:
            assert big == small, method
    assert column_drift("x", big_ref, big_cur, method="wasserstein").drifted is True


def test_values_near_the_float_limit() -> None:
    ref = np.array([-1.7e308, 1.7e308, 0.0, 1e308] * 10)
    cur = np.array([1.7e308, 1.6e308, 1.5e308] * 10)
    for method in ("ks", "wasserstein", "psi", "jensenshannon", "hellinger", "energy"):
        res = column_drift("x", ref, cur, method=method)
        assert res.drifted is True, method
        assert res.statistic is not None and math.isfinite(res.statistic), method


def test_constant_column_beyond_2_pow_53_falls_back_to_values_as_categories() -> None:
    res = column_drift("x", np.full(100, 1e17), np.full(40, 1e17), method="hellinger")
    assert res.statistic == 0.0 and res.drifted is False


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "nope"}, "unknown drift method 'nope'; known: anderson, chisquare"),
        ({"threshold": math.nan}, "threshold must be finite"),
        ({"threshold": -0.1}, "threshold must be finite"),
        ({"min_sample_size": -1}, "min_sample_size"),
        ({"reference_size": -5}, "reference_size"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(MetricsError, match=match):
        column_drift("x", np.arange(50.0), np.arange(50.0), **kwargs)  # type: ignore[arg-type]


def test_mixed_kinds_raise() -> None:
    with pytest.raises(MetricsError, match="same kind"):
        column_drift("x", np.arange(50.0), {"a": 50})


# --- dataset drift -----------------------------------------------------------------------------


def _r(drifted: bool | None) -> DriftResult:
    return DriftResult("f", "psi", None if drifted is None else 0.2, None, 0.1, drifted, 100, 100)


def test_dataset_drift_share_among_columns_with_a_verdict() -> None:
    assert dataset_drift([_r(True), _r(False), _r(None), _r(None)]) == (0.5, True)
    assert dataset_drift([_r(True), _r(False), _r(False)]) == pytest.approx((1 / 3, False))
    assert dataset_drift([_r(True), _r(False), _r(False)], share=0.3)[1] is True
    assert dataset_drift([_r(None), _r(None)]) == (None, None)
    assert dataset_drift([]) == (None, None)
    assert dataset_drift([_r(False)], share=0.0) == (0.0, True)


def test_dataset_drift_refuses_a_share_outside_0_1() -> None:
    with pytest.raises(MetricsError, match="share"):
        dataset_drift([_r(True)], share=1.5)
