"""The drift measures that are distances: drift when the distance reaches the threshold.

Names, thresholds, rules and computations follow Evidently's
``legacy/calculations/stattests/``; where they differ on purpose the function's docstring
says so (``docs/drift.md`` lists every method).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial import distance

from stream.metrics.binning import (
    NumericPair,
    Pair,
    binned_shares,
    category_counts,
    histogram_edges,
)
from stream.metrics.drift_method import MethodOutcome, MethodTable, numeric_pair, quiet

DISTANCES = MethodTable()


@DISTANCES.register(
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
    num = numeric_pair(pair)
    with quiet():
        wd = float(stats.wasserstein_distance(num.reference, num.current))
    std = float(np.std(num.reference))
    # max(std, 0.001) on the unscaled values, without leaving the scaled domain
    if std >= math.ldexp(0.001, -num.log2_scale):
        return MethodOutcome(wd / std)
    return MethodOutcome(math.ldexp(wd, num.log2_scale) / 0.001)


@DISTANCES.register(
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
    num = numeric_pair(pair)
    with quiet():
        value = float(stats.energy_distance(num.reference, num.current))
    return MethodOutcome(math.ldexp(value, num.log2_scale // 2))


@DISTANCES.register(
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
    with quiet():
        return MethodOutcome(float(distance.jensenshannon(ref, cur)))


@DISTANCES.register("psi", "PSI", "distance", 0.1, ">=", numeric=True, categorical=True)
def _psi(pair: Pair) -> MethodOutcome:
    """Population stability index ``sum((r - c) ln(r / c))`` of the binned, filled shares."""
    ref, cur = binned_shares(pair, fill_zeros=True)
    return MethodOutcome(float(np.sum((ref - cur) * np.log(ref / cur))))


@DISTANCES.register(
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


@DISTANCES.register(
    "hellinger", "Hellinger distance", "distance", 0.1, ">=", numeric=True, categorical=True
)
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
