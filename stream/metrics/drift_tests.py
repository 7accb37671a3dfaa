"""The drift tests, registered by name, each a small function with a default threshold.

Each test takes a :class:`~stream.metrics.binning.NumericPair` or
:class:`~stream.metrics.binning.CategoricalPair` and returns a :class:`MethodOutcome`; its
:class:`DriftMethod` entry says which column kinds it accepts, whether its score is a p-value
or a distance, the default threshold and the drift rule. Names, thresholds, rules and
computations follow Evidently's ``legacy/calculations/stattests/`` so that the same data gets
the same verdict; where they differ on purpose the function's docstring says so, and
``docs/drift.md`` lists every method.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from scipy import stats
from scipy.spatial import distance

from stream.errors import MetricsError
from stream.metrics.binning import (
    NumericPair,
    Pair,
    binned_shares,
    category_counts,
    histogram_edges,
)

Kind = Literal["p_value", "distance"]
Rule = Literal["<", "<=", ">=", ">"]

#: Permutations of the TVD test, and the seed (Evidently: 1000 iterations, ``np.random.seed(0)``).
TVD_PERMUTATIONS: Final = 1000
TVD_SEED: Final = 0
#: Up to this many pooled values, TVD permutes rows exactly as Evidently does; above, it draws
#: the permuted reference counts from the multivariate hypergeometric law (same null
#: distribution, cost independent of the number of rows).
TVD_EXACT_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class MethodOutcome:
    """What one test computed: its statistic and, for tests, the p-value (NaN = undefined)."""

    statistic: float
    p_value: float | None = None


@dataclass(frozen=True, slots=True)
class DriftMethod:
    """A registered drift test.

    ``rule`` compares the score (the p-value for ``kind="p_value"``, the statistic for
    ``kind="distance"``) with the threshold: drift when ``score <rule> threshold``.
    ``numeric`` / ``categorical`` say which column kinds it accepts; categorical tests accept
    numerical columns too, each distinct value being a category (Evidently does the same for
    numerical columns with at most 5 distinct values).
    """

    name: str
    title: str
    kind: Kind
    default_threshold: float
    rule: Rule
    numeric: bool
    categorical: bool
    func: Callable[[Pair], MethodOutcome]

    def score(self, outcome: MethodOutcome) -> float:
        """The value the rule compares: the p-value of a test, else the statistic."""
        if self.kind == "p_value":
            return math.nan if outcome.p_value is None else outcome.p_value
        return outcome.statistic

    def is_drift(self, score: float, threshold: float) -> bool | None:
        """Apply the rule; None when the score is NaN (the test is undefined on the data)."""
        if math.isnan(score):
            return None
        if self.rule == "<":
            return score < threshold
        if self.rule == "<=":
            return score <= threshold
        if self.rule == ">=":
            return score >= threshold
        return score > threshold


_REGISTRY: dict[str, DriftMethod] = {}
_ALIASES: dict[str, str] = {}


def _register(
    name: str,
    title: str,
    kind: Kind,
    default_threshold: float,
    rule: Rule,
    *,
    numeric: bool,
    categorical: bool,
    aliases: tuple[str, ...] = (),
) -> Callable[[Callable[[Pair], MethodOutcome]], Callable[[Pair], MethodOutcome]]:
    def add(func: Callable[[Pair], MethodOutcome]) -> Callable[[Pair], MethodOutcome]:
        _REGISTRY[name] = DriftMethod(
            name, title, kind, default_threshold, rule, numeric, categorical, func
        )
        for alias in aliases:
            _ALIASES[alias] = name
        return func

    return add


def available_methods() -> list[str]:
    """Names of the registered drift methods, sorted.

    Examples
    --------
    >>> "ks" in available_methods() and "psi" in available_methods()
    True
    """
    return sorted(_REGISTRY)


def get_method(name: str) -> DriftMethod:
    """The registered method ``name`` (or one of its Evidently aliases: ed, mannw, TVD, es).

    Raises
    ------
    MetricsError
        If no method has that name; the message lists the known names.
    """
    method = _REGISTRY.get(_ALIASES.get(name, name))
    if method is None:
        raise MetricsError(
            f"unknown drift method {name!r}; known: {', '.join(available_methods())}"
        )
    return method


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence scipy's and numpy's warnings on degenerate input; results carry inf/NaN."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _numeric(pair: Pair) -> NumericPair:
    if not isinstance(pair, NumericPair):
        raise MetricsError("this drift method needs a numerical column")
    return pair


def _outcome(statistic: Any, p_value: Any = None) -> MethodOutcome:
    """Coerce scipy's numpy scalars to plain floats."""
    return MethodOutcome(float(statistic), None if p_value is None else float(p_value))


# --- tests with a p-value ---------------------------------------------------------------


@_register(
    "ks", "Kolmogorov-Smirnov p-value", "p_value", 0.05, "<=", numeric=True, categorical=False
)
def _ks(pair: Pair) -> MethodOutcome:
    """Two-sample KS, two-sided, ``scipy.stats.ks_2samp`` defaults; statistic D."""
    num = _numeric(pair)
    with _quiet():
        res = stats.ks_2samp(num.reference, num.current)
    return _outcome(res.statistic, res.pvalue)


def _expected_and_observed(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Current counts, and reference counts scaled to the current size (Evidently's k_norm)."""
    ref, cur = category_counts(pair)
    k_norm = pair.current_size / pair.reference_size
    return ref * k_norm, cur


@_register("chisquare", "chi-square p-value", "p_value", 0.05, "<", numeric=True, categorical=True)
def _chisquare(pair: Pair) -> MethodOutcome:
    """Pearson chi-square of current counts against reference frequencies.

    A category seen only in the current window has expected count 0: the statistic is +inf
    and the p-value 0 (drift), as in Evidently. A single category gives NaN (no verdict).
    """
    expected, observed = _expected_and_observed(pair)
    with _quiet():
        res = stats.chisquare(observed, expected)
    return _outcome(res.statistic, res.pvalue)


@_register("g_test", "G-test p-value", "p_value", 0.1, "<", numeric=True, categorical=True)
def _g_test(pair: Pair) -> MethodOutcome:
    """Log-likelihood ratio (G) test, same expected counts as ``chisquare``."""
    expected, observed = _expected_and_observed(pair)
    with _quiet():
        res = stats.power_divergence(observed, expected, lambda_="log-likelihood")
    return _outcome(res.statistic, res.pvalue)


@_register("z", "Z-test p-value", "p_value", 0.05, "<", numeric=True, categorical=True)
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
    with _quiet():
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        p_value = 2 * (1 - stats.norm.cdf(np.abs(z)))
    return _outcome(z, p_value)


@_register(
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
    with _quiet():
        res = stats.fisher_exact(table)
    return _outcome(res.statistic, res.pvalue)


def _tvd_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(
        0.5 * np.sum(np.abs(ref_counts / ref_counts.sum() - cur_counts / cur_counts.sum()))
    )


@_register(
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


@_register(
    "anderson", "Anderson-Darling p-value", "p_value", 0.1, "<", numeric=True, categorical=False
)
def _anderson(pair: Pair) -> MethodOutcome:
    """k-sample Anderson-Darling (midrank), ``scipy.stats.anderson_ksamp``.

    scipy interpolates the p-value in a table, so it is floored at 0.001 and capped at 0.25.
    With a single distinct value over both samples the test is undefined (no verdict; scipy
    raises, and so does Evidently).
    """
    num = _numeric(pair)
    if num.n_unique() < 2:
        return MethodOutcome(math.nan, math.nan)
    with _quiet():
        try:
            res = stats.anderson_ksamp([num.reference, num.current], variant="midrank")
        except TypeError:  # scipy < 1.17 has no `variant`; midrank is its default
            res = stats.anderson_ksamp([num.reference, num.current])
    return _outcome(res.statistic, res.pvalue)


@_register(
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
    num = _numeric(pair)
    if min(num.reference_size, num.current_size) < 2:
        return MethodOutcome(math.nan, math.nan)
    with _quiet():
        res = stats.cramervonmises_2samp(num.reference, num.current)
    return _outcome(res.statistic, res.pvalue)


@_register(
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
    num = _numeric(pair)
    with _quiet():
        res = stats.mannwhitneyu(num.reference, num.current, alternative="less")
    return _outcome(res.statistic, res.pvalue)


@_register("t_test", "t-test p-value", "p_value", 0.05, "<", numeric=True, categorical=False)
def _t_test(pair: Pair) -> MethodOutcome:
    """Student's two-sample t-test (equal variances), ``scipy.stats.ttest_ind`` defaults.

    Two constant samples give NaN (no verdict; Evidently reports no drift).
    """
    num = _numeric(pair)
    with _quiet():
        res = stats.ttest_ind(num.reference, num.current)
    return _outcome(res.statistic, res.pvalue)


@_register(
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
    num = _numeric(pair)
    pooled = np.concatenate([num.reference, num.current])
    if min(num.reference_size, num.current_size) < 5 or stats.iqr(pooled) == 0:
        return MethodOutcome(math.nan, math.nan)
    with _quiet():
        res = stats.epps_singleton_2samp(num.reference, num.current)
    return _outcome(res.statistic, res.pvalue)


# --- distances ---------------------------------------------------------------------------


@_register(
    "wasserstein",
    "Wasserstein distance (normed)",
    "distance",
    0.1,
    ">=",
    numeric=True,
    categorical=False,
)
def _wasserstein(pair: Pair) -> MethodOutcome:
    """``wasserstein_distance(ref, cur) / max(std(ref), 0.001)``, population std (ddof=0).

    Evidently calls ``np.std`` on a pandas Series, which is ddof=0.
    """
    num = _numeric(pair)
    with _quiet():
        wd = float(stats.wasserstein_distance(num.reference, num.current))
    std = float(np.std(num.reference))
    # max(std, 0.001) on the unscaled values, without leaving the scaled domain
    if std >= math.ldexp(0.001, -num.log2_scale):
        return MethodOutcome(wd / std)
    return MethodOutcome(math.ldexp(wd, num.log2_scale) / 0.001)


@_register(
    "energy",
    "energy distance",
    "distance",
    0.1,
    ">",
    numeric=True,
    categorical=False,
    aliases=("ed",),
)
def _energy(pair: Pair) -> MethodOutcome:
    """``scipy.stats.energy_distance`` (not normed: it has the unit of sqrt(value)).

    Evidently's rule is strict: drift when the distance is > the threshold.
    """
    num = _numeric(pair)
    with _quiet():
        value = float(stats.energy_distance(num.reference, num.current))
    return MethodOutcome(math.ldexp(value, num.log2_scale // 2))


@_register(
    "jensenshannon",
    "Jensen-Shannon distance",
    "distance",
    0.1,
    ">=",
    numeric=True,
    categorical=True,
)
def _jensenshannon(pair: Pair) -> MethodOutcome:
    """``scipy.spatial.distance.jensenshannon`` (natural log) of the binned shares, no filling."""
    ref, cur = binned_shares(pair, fill_zeros=False)
    with _quiet():
        return MethodOutcome(float(distance.jensenshannon(ref, cur)))


@_register("psi", "PSI", "distance", 0.1, ">=", numeric=True, categorical=True)
def _psi(pair: Pair) -> MethodOutcome:
    """Population stability index ``sum((r - c) ln(r / c))`` of the binned, filled shares."""
    ref, cur = binned_shares(pair, fill_zeros=True)
    return MethodOutcome(float(np.sum((ref - cur) * np.log(ref / cur))))


@_register(
    "kl_div",
    "Kullback-Leibler divergence",
    "distance",
    0.1,
    ">=",
    numeric=True,
    categorical=True,
)
def _kl_div(pair: Pair) -> MethodOutcome:
    """``scipy.stats.entropy(ref, cur)``: KL(reference || current) of the binned, filled shares."""
    ref, cur = binned_shares(pair, fill_zeros=True)
    return MethodOutcome(float(stats.entropy(ref, cur)))


@_register("hellinger", "Hellinger distance", "distance", 0.1, ">=", numeric=True, categorical=True)
def _hellinger(pair: Pair) -> MethodOutcome:
    """Hellinger distance ``sqrt(1 - sum(sqrt(p q)))``, binned as Evidently's own code does.

    Categories: shares per category. Numerical columns (any number of distinct values): Sturges
    edges over the *distinct* values of both samples (not over the data, unlike
    ``get_binned_data``), density histograms times the mean bin width. When numpy cannot build
    the edges (a constant column beyond 2**53), distinct values are used as categories.
    """
    if isinstance(pair, NumericPair):
        values = np.unique(np.concatenate([pair.reference, pair.current]))
        edges = histogram_edges(values)
        if edges is not None:
            h1 = np.histogram(pair.reference, bins=edges, density=True)[0]
            h2 = np.histogram(pair.current, bins=edges, density=True)[0]
            width = (float(np.max(edges)) - float(np.min(edges))) / (len(edges) - 1)
            overlap = 0.0
            for p1, p2 in zip(h1, h2, strict=True):
                overlap += math.sqrt(p1 * p2) * width
            return MethodOutcome(math.sqrt(1 - min(max(overlap, 0.0), 1.0)))
    ref_counts, cur_counts = category_counts(pair)
    ref = ref_counts / pair.reference_size
    cur = cur_counts / pair.current_size
    overlap = 0.0
    for p1, p2 in zip(ref, cur, strict=True):
        overlap += math.sqrt(p1 * p2)
    return MethodOutcome(math.sqrt(1 - min(max(overlap, 0.0), 1.0)))
