"""The drift tests that give a p-value: drift when it falls below the threshold.

Names, thresholds, rules and computations follow Evidently's
``legacy/calculations/stattests/``; where they differ on purpose the function's docstring
says so (``docs/drift.md`` lists every method).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from scipy import stats

from stream.errors import MetricsError
from stream.metrics.binning import NumericPair, Pair, category_counts
from stream.metrics.drift_method import (
    MethodOutcome,
    MethodTable,
    numeric_pair,
    outcome,
    quiet,
)

#: Permutations of the TVD test, and the seed (Evidently: 1000 iterations, ``np.random.seed(0)``).
TVD_PERMUTATIONS: Final = 1000
TVD_SEED: Final = 0
#: Up to this many pooled values, TVD permutes rows exactly as Evidently does; above, it draws
#: the permuted reference counts from the multivariate hypergeometric law (same null
#: distribution, cost independent of the number of rows).
TVD_EXACT_LIMIT: Final = 10_000


TESTS = MethodTable()


@TESTS.register(
    "ks", "Kolmogorov-Smirnov p-value", "p_value", 0.05, "<=", numeric=True, categorical=False
)
def _ks(pair: Pair) -> MethodOutcome:
    """Two-sample KS, two-sided, ``scipy.stats.ks_2samp`` defaults; statistic D."""
    num = numeric_pair(pair)
    with quiet():
        res = stats.ks_2samp(num.reference, num.current)
    return outcome(res.statistic, res.pvalue)


def _expected_and_observed(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Current counts, and reference counts scaled to the current size (Evidently's k_norm)."""
    ref, cur = category_counts(pair)
    k_norm = pair.current_size / pair.reference_size
    return ref * k_norm, cur


@TESTS.register(
    "chisquare", "chi-square p-value", "p_value", 0.05, "<", numeric=True, categorical=True
)
def _chisquare(pair: Pair) -> MethodOutcome:
    """Pearson chi-square of current counts against reference frequencies.

    A category seen only in the current window has expected count 0: the statistic is +inf
    and the p-value 0 (drift), as in Evidently. A single category gives NaN (no verdict).
    """
    expected, observed = _expected_and_observed(pair)
    with quiet():
        res = stats.chisquare(observed, expected)
    return outcome(res.statistic, res.pvalue)


@TESTS.register("g_test", "G-test p-value", "p_value", 0.1, "<", numeric=True, categorical=True)
def _g_test(pair: Pair) -> MethodOutcome:
    """Log-likelihood ratio (G) test, same expected counts as ``chisquare``."""
    expected, observed = _expected_and_observed(pair)
    with quiet():
        res = stats.power_divergence(observed, expected, lambda_="log-likelihood")
    return outcome(res.statistic, res.pvalue)


@TESTS.register("z", "Z-test p-value", "p_value", 0.05, "<", numeric=True, categorical=True)
def _z(pair: Pair) -> MethodOutcome:
    """Two-proportion Z-test: share of values other than the smallest category.

    As Evidently: values equal to the first sorted category count as 0, all others as 1;
    ``z = (p_ref - p_cur) / sqrt(P (1 - P) (1/n_ref + 1/n_cur))`` with the pooled share P, and
    ``p = 2 (1 - Phi(|z|))``. When both sides hold the same single value, p = 1 (z = 0).
    """
    ref, cur = category_counts(pair)
    if (
        np.count_nonzero(ref) == 1
        and np.count_nonzero(cur) == 1
        and np.argmax(ref) == np.argmax(cur)
    ):
        return MethodOutcome(0.0, 1.0)
    n1, n2 = float(pair.reference_size), float(pair.current_size)
    p1 = float(pair.reference_size - ref[0]) / n1
    p2 = float(pair.current_size - cur[0]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with quiet():
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        p_value = 2 * (1 - stats.norm.cdf(np.abs(z)))
    return outcome(z, p_value)


@TESTS.register(
    "fisher_exact", "Fisher's exact p-value", "p_value", 0.1, "<", numeric=True, categorical=True
)
def _fisher_exact(pair: Pair) -> MethodOutcome:
    """Fisher's exact test on the 2x2 table of a binary column; statistic = odds ratio.

    The table is ``[[cur_second, cur_first], [ref_second, ref_first]]`` over the two sorted
    categories. Unlike Evidently, the reference and current sizes need not be equal. More than
    two categories raise :class:`MetricsError`; one category gives p = 1.
    """
    ref, cur = category_counts(pair)
    if ref.size > 2:
        raise MetricsError(f"fisher_exact needs a binary column, got {ref.size} categories")
    if ref.size == 1:
        ref, cur = np.append(ref, 0), np.append(cur, 0)
    table = np.array([[cur[1], cur[0]], [ref[1], ref[0]]])
    with quiet():
        res = stats.fisher_exact(table)
    return outcome(res.statistic, res.pvalue)


def _tvd_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(
        0.5 * np.sum(np.abs(ref_counts / ref_counts.sum() - cur_counts / cur_counts.sum()))
    )


@TESTS.register(
    "tvd",
    "total variation distance p-value",
    "p_value",
    0.1,
    "<",
    numeric=True,
    categorical=True,
    aliases=("TVD",),
)
def _tvd(pair: Pair) -> MethodOutcome:
    """Total variation distance with a permutation p-value (1000 permutations, seed 0).

    As Evidently: pool reference then current, draw a new reference of the same size without
    replacement (``RandomState(0).permutation``), p = share of permuted distances >= the
    observed one. For a numerical column given in row order, the permutations are Evidently's.
    Beyond ``TVD_EXACT_LIMIT`` pooled values the permuted counts are drawn directly from their
    multivariate hypergeometric law (seeded), which is the same test at a bounded cost.
    """
    if isinstance(pair, NumericPair):
        ref_codes, cur_codes, n_values = pair.codes()
    else:
        n_values = len(pair.labels)
        ref_codes = np.repeat(np.arange(n_values), pair.reference)
        cur_codes = np.repeat(np.arange(n_values), pair.current)
    pooled = np.concatenate([ref_codes, cur_codes])
    total = np.bincount(pooled, minlength=n_values)
    ref_counts = np.bincount(ref_codes, minlength=n_values)
    observed = _tvd_value(ref_counts, total - ref_counts)
    n_ref = ref_codes.size
    if pooled.size <= TVD_EXACT_LIMIT:
        rng = np.random.RandomState(TVD_SEED)
        permuted = np.empty(TVD_PERMUTATIONS)
        for i in range(TVD_PERMUTATIONS):
            order = rng.permutation(pooled.size)[:n_ref]
            new_ref = np.bincount(pooled[order], minlength=n_values)
            permuted[i] = _tvd_value(new_ref, total - new_ref)
    else:
        # same null distribution, O(categories) per draw instead of O(rows)
        draws = np.random.default_rng(TVD_SEED).multivariate_hypergeometric(
            total, n_ref, size=TVD_PERMUTATIONS
        )
        rest = total - draws
        permuted = 0.5 * np.sum(np.abs(draws / n_ref - rest / (pooled.size - n_ref)), axis=1)
    return MethodOutcome(observed, float(np.mean(observed <= permuted)))


@TESTS.register(
    "anderson", "Anderson-Darling p-value", "p_value", 0.1, "<", numeric=True, categorical=False
)
def _anderson(pair: Pair) -> MethodOutcome:
    """k-sample Anderson-Darling (midrank), ``scipy.stats.anderson_ksamp``.

    scipy interpolates the p-value in a table, so it is floored at 0.001 and capped at 0.25.
    With a single distinct value over both samples the test is undefined (no verdict; scipy
    raises, and so does Evidently).
    """
    num = numeric_pair(pair)
    if num.n_unique() < 2:
        return MethodOutcome(math.nan, math.nan)
    with quiet():
        try:
            res = stats.anderson_ksamp([num.reference, num.current], variant="midrank")
        except TypeError:  # scipy < 1.17 has no `variant`; midrank is its default
            res = stats.anderson_ksamp([num.reference, num.current])
    return outcome(res.statistic, res.pvalue)


@TESTS.register(
    "cramer_von_mises",
    "Cramer-von Mises p-value",
    "p_value",
    0.1,
    "<=",
    numeric=True,
    categorical=False,
)
def _cramer_von_mises(pair: Pair) -> MethodOutcome:
    """Two-sample Cramer-von Mises, ``scipy.stats.cramervonmises_2samp`` (method "auto").

    Needs two values per sample; fewer gives no verdict.
    """
    num = numeric_pair(pair)
    if min(num.reference_size, num.current_size) < 2:
        return MethodOutcome(math.nan, math.nan)
    with quiet():
        res = stats.cramervonmises_2samp(num.reference, num.current)
    return outcome(res.statistic, res.pvalue)


@TESTS.register(
    "mannwhitneyu",
    "Mann-Whitney U p-value (one-sided, as Evidently)",
    "p_value",
    0.05,
    "<",
    numeric=True,
    categorical=False,
    aliases=("mannw",),
)
def _mannwhitneyu(pair: Pair) -> MethodOutcome:
    """Mann-Whitney U with ``alternative="less"``, exactly as Evidently calls it.

    One-sided: it flags a current window whose values are stochastically *larger* than the
    reference; a downward shift gives p close to 1 and no drift. Statistic = U of the
    reference.
    """
    num = numeric_pair(pair)
    with quiet():
        res = stats.mannwhitneyu(num.reference, num.current, alternative="less")
    return outcome(res.statistic, res.pvalue)


@TESTS.register("t_test", "t-test p-value", "p_value", 0.05, "<", numeric=True, categorical=False)
def _t_test(pair: Pair) -> MethodOutcome:
    """Student's two-sample t-test (equal variances), ``scipy.stats.ttest_ind`` defaults.

    Two constant samples give NaN (no verdict; Evidently reports no drift).
    """
    num = numeric_pair(pair)
    with quiet():
        res = stats.ttest_ind(num.reference, num.current)
    return outcome(res.statistic, res.pvalue)


@TESTS.register(
    "epps_singleton",
    "Epps-Singleton p-value",
    "p_value",
    0.05,
    "<",
    numeric=True,
    categorical=False,
    aliases=("es",),
)
def _epps_singleton(pair: Pair) -> MethodOutcome:
    """Epps-Singleton, ``scipy.stats.epps_singleton_2samp``.

    Undefined (no verdict) when the pooled interquartile range is 0 or a sample has fewer than
    5 values; Evidently raises there.
    """
    num = numeric_pair(pair)
    pooled = np.concatenate([num.reference, num.current])
    if min(num.reference_size, num.current_size) < 5 or stats.iqr(pooled) == 0:
        return MethodOutcome(math.nan, math.nan)
    with quiet():
        res = stats.epps_singleton_2samp(num.reference, num.current)
    return outcome(res.statistic, res.pvalue)

