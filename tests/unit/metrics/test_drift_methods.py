"""Known answers for each drift method: scipy, and textbook formulas written out here."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from stream.errors import MetricsError
from stream.metrics.binning import CategoricalPair, NumericPair
from stream.metrics.drift import DriftResult, column_drift
from stream.metrics.drift_tests import available_methods, get_method

TOL = 1e-9


def _rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def shifted() -> tuple[np.ndarray, np.ndarray]:
    rng = _rng()
    return rng.normal(0.0, 1.0, size=600), rng.normal(0.3, 1.2, size=400)


@pytest.fixture(scope="module")
def same() -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(11)
    return rng.normal(0.0, 1.0, size=600), rng.normal(0.0, 1.0, size=400)


def _num(ref: np.ndarray, cur: np.ndarray) -> NumericPair:
    return NumericPair.of(np.asarray(ref, float), np.asarray(cur, float))


def _run(method: str, ref: object, cur: object, **kw: object) -> DriftResult:
    return column_drift("f", ref, cur, method=method, min_sample_size=1, **kw)  # type: ignore[arg-type]


# --- registry ------------------------------------------------------------------------------


def test_registry_lists_every_method_with_evidently_defaults() -> None:
    expected = {
        # name: (kind, default threshold, rule)  -- Evidently legacy/calculations/stattests
        "ks": ("p_value", 0.05, "<="),
        "chisquare": ("p_value", 0.05, "<"),
        "z": ("p_value", 0.05, "<"),
        "wasserstein": ("distance", 0.1, ">="),
        "jensenshannon": ("distance", 0.1, ">="),
        "psi": ("distance", 0.1, ">="),
        "kl_div": ("distance", 0.1, ">="),
        "hellinger": ("distance", 0.1, ">="),
        "anderson": ("p_value", 0.1, "<"),
        "cramer_von_mises": ("p_value", 0.1, "<="),
        "tvd": ("p_value", 0.1, "<"),
        "energy": ("distance", 0.1, ">"),
        "mannwhitneyu": ("p_value", 0.05, "<"),
        "t_test": ("p_value", 0.05, "<"),
        "fisher_exact": ("p_value", 0.1, "<"),
        "g_test": ("p_value", 0.1, "<"),
        "epps_singleton": ("p_value", 0.05, "<"),
    }
    assert available_methods() == sorted(expected)
    for name, (kind, threshold, rule) in expected.items():
        spec = get_method(name)
        assert (spec.name, spec.kind, spec.default_threshold, spec.rule) == (
            name,
            kind,
            threshold,
            rule,
        )


@pytest.mark.parametrize(
    ("alias", "name"),
    [("ed", "energy"), ("mannw", "mannwhitneyu"), ("TVD", "tvd"), ("es", "epps_singleton")],
)
def test_evidently_names_are_aliases(alias: str, name: str) -> None:
    assert get_method(alias).name == name


def test_unknown_method_lists_known_names() -> None:
    with pytest.raises(MetricsError, match=r"unknown drift method 'kolmogorov'.*ks.*psi"):
        get_method("kolmogorov")


@pytest.mark.parametrize(
    ("rule", "score", "threshold", "verdict"),
    [
        ("ks", 0.05, 0.05, True),  # <=
        ("chisquare", 0.05, 0.05, False),  # <
        ("psi", 0.1, 0.1, True),  # >=
        ("energy", 0.1, 0.1, False),  # >
        ("energy", 0.1000001, 0.1, True),
        ("ks", math.nan, 0.05, None),
    ],
)
def test_rules_at_the_threshold(rule: str, score: float, threshold: float, verdict: object) -> None:
    assert get_method(rule).is_drift(score, threshold) is verdict


# --- tests with a p-value ------------------------------------------------------------------


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.concatenate([a, b])
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def test_ks_matches_scipy_and_the_ecdf_gap(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = shifted
    res = _run("ks", ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert res.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert res.statistic == pytest.approx(_ks_statistic(ref, cur), abs=TOL)
    assert res.p_value < 0.05 and res.drifted is True


def test_ks_no_drift_on_same_distribution(same: tuple[np.ndarray, np.ndarray]) -> None:
    res = _run("ks", *same)
    assert res.p_value > 0.05 and res.drifted is False


def test_chisquare_is_pearson_with_reference_frequencies_scaled_to_current() -> None:
    ref = {"a": 500, "b": 300, "c": 200}
    cur = {"a": 40, "b": 35, "c": 25}
    res = _run("chisquare", ref, cur)
    observed = np.array([40.0, 35.0, 25.0])
    expected = np.array([500.0, 300.0, 200.0]) * 100 / 1000
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert res.statistic == pytest.approx(chi2, abs=TOL)
    assert res.p_value == pytest.approx(stats.chi2.sf(chi2, df=2), abs=TOL)
    assert res.drifted is (res.p_value < 0.05)


def test_chisquare_new_category_in_current_is_infinite_and_drifts() -> None:
    res = _run("chisquare", {"a": 50, "b": 50}, {"a": 20, "b": 20, "new": 1})
    assert res.statistic == math.inf
    assert res.p_value == 0.0
    assert res.drifted is True


def test_chisquare_category_missing_from_current_is_finite() -> None:
    res = _run("chisquare", {"a": 50, "b": 30, "gone": 20}, {"a": 30, "b": 20})
    expected = np.array([50.0, 30.0, 20.0]) * 50 / 100
    observed = np.array([30.0, 20.0, 0.0])
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert res.statistic == pytest.approx(chi2, abs=TOL)
    assert res.p_value == pytest.approx(stats.chi2.sf(chi2, df=2), abs=TOL)


def test_g_test_is_the_log_likelihood_ratio() -> None:
    ref = {"a": 500, "b": 300, "c": 200}
    cur = {"a": 30, "b": 45, "c": 25}
    res = _run("g_test", ref, cur)
    observed = np.array([30.0, 45.0, 25.0])
    expected = np.array([500.0, 300.0, 200.0]) * 100 / 1000
    g = 2 * float(np.sum(observed * np.log(observed / expected)))
    assert res.statistic == pytest.approx(g, abs=TOL)
    assert res.p_value == pytest.approx(stats.chi2.sf(g, df=2), abs=TOL)
    assert res.drifted is (res.p_value < 0.1)


def _two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return z, 2 * stats.norm.sf(abs(z))


def test_z_is_the_two_proportion_test() -> None:
    # "no" < "yes": the share tested is that of "yes"
    res = _run("z", {"no": 700, "yes": 300}, {"no": 120, "yes": 80})
    z, p = _two_proportion_z(300, 1000, 80, 200)
    assert res.statistic == pytest.approx(z, abs=TOL)
    assert res.p_value == pytest.approx(p, abs=TOL)
    assert res.drifted is True


def test_z_on_a_binary_numeric_column_matches_the_counts() -> None:
    rng = _rng(5)
    ref = (rng.random(800) < 0.3).astype(float)
    cur = (rng.random(150) < 0.33).astype(float)
    res = _run("z", ref, cur)
    z, p = _two_proportion_z(int(ref.sum()), 800, int(cur.sum()), 150)
    assert res.statistic == pytest.approx(z, abs=TOL)
    assert res.p_value == pytest.approx(p, abs=TOL)


def test_z_same_single_value_on_both_sides_is_p_one() -> None:
    res = _run("z", {"a": 40}, {"a": 35})
    assert (res.statistic, res.p_value, res.drifted) == (0.0, 1.0, False)


def test_z_different_single_values_drift() -> None:
    res = _run("z", {"a": 40}, {"b": 35})
    z, p = _two_proportion_z(0, 40, 35, 35)
    assert res.statistic == pytest.approx(z, abs=TOL)
    assert res.p_value == pytest.approx(p, abs=TOL)
    assert res.drifted is True


def test_fisher_exact_on_a_binary_column() -> None:
    res = _run("fisher_exact", {"a": 30, "b": 10}, {"a": 12, "b": 14})
    expected = stats.fisher_exact([[14, 12], [10, 30]])
    assert res.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert res.statistic == pytest.approx(expected.statistic, abs=TOL)
    # the hypergeometric tail written out: P(table at least as extreme as the observed one)
    row1, col1, total = 26, 24, 66
    probs = stats.hypergeom.pmf(np.arange(0, 25), total, col1, row1)
    observed = stats.hypergeom.pmf(14, total, col1, row1)
    assert res.p_value == pytest.approx(probs[probs <= observed * (1 + 1e-7)].sum(), abs=1e-9)
    assert res.drifted is True


def test_fisher_exact_one_category_is_p_one_and_more_than_two_raise() -> None:
    res = _run("fisher_exact", {"a": 30}, {"a": 12})
    assert (res.p_value, res.drifted, res.statistic) == (1.0, False, None)
    with pytest.raises(MetricsError, match="binary"):
        _run("fisher_exact", {"a": 1, "b": 1}, {"c": 1})


def test_fisher_exact_does_not_need_equal_sizes() -> None:
    res = _run("fisher_exact", {"a": 300, "b": 100}, {"a": 12, "b": 14})
    assert res.p_value == pytest.approx(stats.fisher_exact([[14, 12], [100, 300]]).pvalue)


def _evidently_style_tvd_p(ref: list[float], cur: list[float], iterations: int) -> float:
    """Evidently's permutation scheme, written with the legacy global numpy seed."""

    def tvd(a: list[float], b: list[float]) -> float:
        keys = sorted(set(a) | set(b))
        ca, cb = Counter(a), Counter(b)
        ra = np.array([ca[k] for k in keys], float)
        rb = np.array([cb[k] for k in keys], float)
        return float(0.5 * np.sum(np.abs(ra / ra.sum() - rb / rb.sum())))

    observed = tvd(ref, cur)
    np.random.seed(0)
    combined = ref + cur
    permuted = []
    for _ in range(iterations):
        new_ref = np.random.choice(combined, len(ref), replace=False).tolist()
        new_cur = list((Counter(combined) - Counter(new_ref)).elements())
        permuted.append(tvd(new_ref, new_cur))
    return float(np.mean(observed <= np.abs(np.array(permuted))))


def test_tvd_statistic_and_permutation_p_value_match_evidentlys_scheme() -> None:
    rng = _rng(2)
    ref = rng.integers(0, 4, size=120).astype(float)
    cur = rng.choice(4, size=80, p=[0.2, 0.2, 0.3, 0.3]).astype(float)
    res = _run("tvd", ref, cur)
    shares_r = np.bincount(ref.astype(int), minlength=4) / 120
    shares_c = np.bincount(cur.astype(int), minlength=4) / 80
    assert res.statistic == pytest.approx(0.5 * np.abs(shares_r - shares_c).sum(), abs=TOL)
    assert res.p_value == _evidently_style_tvd_p(ref.tolist(), cur.tolist(), 1000)


def test_tvd_on_counts_detects_a_big_shift_and_not_a_null() -> None:
    drift = _run("tvd", {"a": 80, "b": 20}, {"a": 20, "b": 80})
    assert drift.p_value == 0.0 and drift.drifted is True
    null = _run("tvd", {"a": 50, "b": 50}, {"a": 50, "b": 50})
    assert null.statistic == 0.0 and null.p_value == 1.0 and null.drifted is False


def test_anderson_matches_scipy_interpolated_p_value(
    shifted: tuple[np.ndarray, np.ndarray], same: tuple[np.ndarray, np.ndarray]
) -> None:
    for ref, cur in (shifted, same):
        res = _run("anderson", ref, cur)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = stats.anderson_ksamp([ref, cur])  # Evidently's call
        assert res.statistic == pytest.approx(expected.statistic, abs=TOL)
        assert res.p_value == pytest.approx(expected.pvalue, abs=TOL)
        assert res.drifted is bool(expected.pvalue < 0.1)


def test_anderson_single_distinct_value_has_no_verdict() -> None:
    res = _run("anderson", np.ones(50), np.ones(40))
    assert (res.statistic, res.p_value, res.drifted) == (None, None, None)


def _cvm_t(a: np.ndarray, b: np.ndarray) -> float:
    """Anderson (1962), eq. 9-10, with midranks."""
    n, m = a.size, b.size
    ranks = stats.rankdata(np.concatenate([np.sort(a), np.sort(b)]))
    u = n * np.sum((ranks[:n] - np.arange(1, n + 1)) ** 2)
    u += m * np.sum((ranks[n:] - np.arange(1, m + 1)) ** 2)
    return float(u / (n * m * (n + m)) - (4 * n * m - 1) / (6 * (n + m)))


def test_cramer_von_mises_statistic_and_p_value(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = shifted
    res = _run("cramer_von_mises", ref, cur)
    assert res.statistic == pytest.approx(_cvm_t(ref, cur), abs=TOL)
    assert res.p_value == pytest.approx(stats.cramervonmises_2samp(ref, cur).pvalue, abs=TOL)
    assert res.drifted is True


def test_cramer_von_mises_needs_two_values_per_side() -> None:
    assert _run("cramer_von_mises", np.arange(10.0), np.array([1.0])).drifted is None


def test_mannwhitneyu_is_one_sided_less_as_evidently(
    shifted: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = shifted
    up = _run("mannwhitneyu", ref, cur)
    ranks = stats.rankdata(np.concatenate([ref, cur]))
    u_ref = float(ranks[: ref.size].sum() - ref.size * (ref.size + 1) / 2)
    assert up.statistic == pytest.approx(u_ref, abs=TOL)
    expected = stats.mannwhitneyu(ref, cur, alternative="less")
    assert up.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert up.drifted is True
    # the same shift downwards is not flagged: Evidently's one-sided alternative
    down = _run("mannwhitneyu", ref, -cur)
    assert down.p_value > 0.95 and down.drifted is False


def test_t_test_is_students_pooled_t(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = shifted
    res = _run("t_test", ref, cur)
    n1, n2 = ref.size, cur.size
    pooled = ((n1 - 1) * ref.var(ddof=1) + (n2 - 1) * cur.var(ddof=1)) / (n1 + n2 - 2)
    t = (ref.mean() - cur.mean()) / math.sqrt(pooled * (1 / n1 + 1 / n2))
    assert res.statistic == pytest.approx(t, abs=TOL)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(t), n1 + n2 - 2), abs=TOL)


def test_t_test_on_two_constant_samples_has_no_verdict() -> None:
    res = _run("t_test", np.full(40, 3.0), np.full(40, 3.0))
    assert (res.statistic, res.p_value, res.drifted) == (None, None, None)


def test_epps_singleton_matches_scipy_and_zero_iqr_has_no_verdict(
    shifted: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = shifted
    res = _run("epps_singleton", ref, cur)
    expected = stats.epps_singleton_2samp(ref, cur)
    assert res.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(expected.pvalue, abs=TOL)
    mostly_zero = np.r_[np.zeros(90), np.arange(1.0, 11.0)]
    assert _run("epps_singleton", mostly_zero, mostly_zero).drifted is None


# --- distances ------------------------------------------------------------------------------


def test_wasserstein_is_normed_by_population_std() -> None:
    rng = _rng(3)
    ref = rng.normal(0, 2, size=500)
    cur = rng.normal(0.4, 2, size=500)
    res = _run("wasserstein", ref, cur)
    w1 = float(np.mean(np.abs(np.sort(ref) - np.sort(cur))))  # equal sizes: sorted pairing
    std0 = math.sqrt(float(np.mean((ref - ref.mean()) ** 2)))
    assert res.statistic == pytest.approx(w1 / std0, abs=TOL)
    assert res.p_value is None
    assert res.drifted is (w1 / std0 >= 0.1)


def test_wasserstein_floors_the_std_at_one_thousandth() -> None:
    res = _run("wasserstein", np.full(100, 5.0), np.full(100, 5.0005))
    assert res.statistic == pytest.approx(0.0005 / 0.001, abs=1e-6)
    assert res.drifted is True


def _js(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return math.sqrt((kl(p, m) + kl(q, m)) / 2)


def test_jensenshannon_categorical_by_hand() -> None:
    res = _run("jensenshannon", {"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20})
    p = np.array([0.6, 0.4, 0.0])
    q = np.array([0.3, 0.5, 0.2])
    assert res.statistic == pytest.approx(_js(p, q), abs=TOL)
    assert res.drifted is True


def test_jensenshannon_numeric_binned_on_sturges_edges(
    shifted: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = shifted
    res = _run("jensenshannon", ref, cur)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    assert res.statistic == pytest.approx(_js(p, q), abs=TOL)
    assert res.statistic <= math.sqrt(math.log(2))


def _filled(shares: np.ndarray) -> np.ndarray:
    smallest = shares[shares > 0].min()
    small = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return np.where(shares == 0, small, shares)


def test_psi_by_hand_with_empty_bins_filled() -> None:
    res = _run("psi", {"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20})
    p = _filled(np.array([0.6, 0.4, 0.0]))
    q = np.array([0.3, 0.5, 0.2])
    psi = float(np.sum((p - q) * np.log(p / q)))
    assert p[2] == 1e-4
    assert res.statistic == pytest.approx(psi, abs=TOL)
    assert res.drifted is True


def test_psi_numeric(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = shifted
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = _filled(np.histogram(ref, edges)[0] / ref.size)
    q = _filled(np.histogram(cur, edges)[0] / cur.size)
    res = _run("psi", ref, cur)
    assert res.statistic == pytest.approx(float(np.sum((p - q) * np.log(p / q))), abs=TOL)


def test_kl_div_normalises_the_filled_shares() -> None:
    res = _run("kl_div", {"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20})
    p = _filled(np.array([0.6, 0.4, 0.0]))
    q = np.array([0.3, 0.5, 0.2])
    p, q = p / p.sum(), q / q.sum()
    assert res.statistic == pytest.approx(float(np.sum(p * np.log(p / q))), abs=TOL)


def test_kl_div_tiny_share_fill_uses_a_millionth_of_the_smallest() -> None:
    ref = {"a": 99_999, "b": 1}
    res = _run("kl_div", ref, {"a": 50, "c": 50})
    p = np.array([99_999, 1, 0]) / 100_000
    q = np.array([0.5, 0.0, 0.5])
    p = np.where(p == 0, 1e-5 / 1e6, p)
    q = np.where(q == 0, 1e-4, q)
    p, q = p / p.sum(), q / q.sum()
    assert res.statistic == pytest.approx(float(np.sum(p * np.log(p / q))), abs=TOL)


def test_hellinger_categorical_by_hand() -> None:
    res = _run("hellinger", {"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20})
    bc = math.sqrt(0.6 * 0.3) + math.sqrt(0.4 * 0.5)
    assert res.statistic == pytest.approx(math.sqrt(1 - bc), abs=TOL)


def test_hellinger_numeric_bins_on_distinct_values(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = np.round(shifted[0], 1), np.round(shifted[1], 1)
    res = _run("hellinger", ref, cur)
    edges = np.histogram_bin_edges(np.unique(np.concatenate([ref, cur])), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    assert res.statistic == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))), abs=TOL)
    # not the same as binning the data itself (get_binned_data), which is what JS/PSI use
    data_edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    assert len(edges) != len(data_edges)


def test_hellinger_identical_is_zero_and_disjoint_is_one() -> None:
    assert _run("hellinger", {"a": 5, "b": 5}, {"a": 50, "b": 50}).statistic == pytest.approx(0)
    assert _run("hellinger", {"a": 5}, {"b": 5}).statistic == pytest.approx(1.0, abs=TOL)


def _energy(a: np.ndarray, b: np.ndarray) -> float:
    xy = np.abs(a[:, None] - b[None, :]).mean()
    xx = np.abs(a[:, None] - a[None, :]).mean()
    yy = np.abs(b[:, None] - b[None, :]).mean()
    return math.sqrt(2 * xy - xx - yy)


def test_energy_distance_by_hand(shifted: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = shifted
    res = _run("energy", ref, cur)
    assert res.statistic == pytest.approx(_energy(ref, cur), rel=1e-9)
    assert res.drifted is (res.statistic > 0.1)


# --- which kinds a method accepts ----------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["ks", "wasserstein", "anderson", "cramer_von_mises", "energy", "mannwhitneyu", "t_test"],
)
def test_numeric_only_methods_refuse_counts(method: str) -> None:
    with pytest.raises(MetricsError, match="does not apply to a categorical column"):
        _run(method, {"a": 40}, {"a": 40})


def test_method_functions_refuse_the_wrong_pair_directly() -> None:
    pair = CategoricalPair.of({"a": 1}, {"a": 1})
    with pytest.raises(MetricsError, match="numerical"):
        get_method("ks").func(pair)


def test_categorical_methods_on_numbers_use_values_as_categories() -> None:
    rng = _rng(9)
    ref = rng.integers(0, 4, size=500).astype(float)
    cur = rng.integers(0, 4, size=200).astype(float)
    as_counts = (
        {str(k): int(v) for k, v in zip(*np.unique(ref, return_counts=True), strict=True)},
        {str(k): int(v) for k, v in zip(*np.unique(cur, return_counts=True), strict=True)},
    )
    for method in ("chisquare", "g_test", "jensenshannon", "psi", "kl_div"):
        numeric = _run(method, ref, cur)
        counts = _run(method, *as_counts)
        assert numeric.statistic == pytest.approx(counts.statistic, abs=TOL), method
        assert numeric.p_value == pytest.approx(counts.p_value, abs=TOL), method


def test_tvd_above_the_exact_limit_draws_the_same_null_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stream.metrics.drift_pvalue as drift_pvalue

    rng = _rng(12)
    ref = rng.integers(0, 5, size=1500).astype(float)
    cur = rng.choice(5, size=500, p=[0.22, 0.2, 0.2, 0.2, 0.18]).astype(float)
    exact = _run("tvd", ref, cur)
    monkeypatch.setattr(drift_pvalue, "TVD_EXACT_LIMIT", 0)
    drawn = _run("tvd", ref, cur)
    assert drawn.statistic == exact.statistic
    assert exact.p_value is not None and drawn.p_value is not None
    assert 0.05 < exact.p_value < 0.95  # a p-value where the two schemes can disagree
    # both are 1000-draw Monte Carlo estimates of one p-value: sd <= 0.023 for the difference
    assert abs(drawn.p_value - exact.p_value) < 0.1
    assert _run("tvd", ref, cur) == drawn  # seeded: reproducible
