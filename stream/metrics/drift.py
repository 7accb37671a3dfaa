"""Drift of one column between the reference and a window, and of a whole window.

This is the entry point the window evaluation calls: :func:`column_drift` per feature, then
:func:`adjust_p_values` across the features of the window and :func:`dataset_drift` for the
window's verdict. The tests themselves live in :mod:`stream.metrics.drift_tests`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy.typing as npt

from stream.errors import MetricsError
from stream.metrics.binning import CategoricalPair, NumericPair, Pair, clean_numeric
from stream.metrics.drift_tests import available_methods, get_method
from stream.metrics.multitest import CORRECTIONS, Correction, adjust

__all__ = [
    "DriftResult",
    "adjust_p_values",
    "available_methods",
    "column_drift",
    "dataset_drift",
    "default_method",
]

#: Evidently switches from tests to distances above this many reference rows.
LARGE_REFERENCE = 1000
#: A numerical column with at most this many distinct values is tested as categorical.
FEW_VALUES = 5
#: A categorical column with at most this many distinct values gets the Z-test.
BINARY = 2


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One column's drift test in one window.

    ``drifted`` is None when no verdict can be given: no data on one side, fewer current values
    than the minimum sample size, or a test that is undefined on the data. ``statistic`` and
    ``p_value`` are then None too (``p_value`` is always None for distance methods).
    ``reference_size`` and ``current_size`` count the non-null finite values the test used.
    """

    feature: str
    method: str
    statistic: float | None
    p_value: float | None  # None for distance methods
    threshold: float
    drifted: bool | None  # None = no verdict (no data / under min sample size)
    reference_size: int
    current_size: int
    p_value_adjusted: float | None = None


def default_method(reference_size: int, n_unique: int, is_numeric: bool) -> str:
    """The method Evidently picks by default for a column.

    Parameters
    ----------
    reference_size
        Non-null reference rows ``n`` (Evidently counts them after dropping nulls/infinities).
    n_unique
        Distinct non-null values ``u`` over reference and current together.
    is_numeric
        Whether the column is numerical; a numerical column with ``u <= 5`` is treated as
        categorical.

    Returns
    -------
    str
        ``n <= 1000``: "ks" (numerical, u > 5), else "chisquare" (u > 2) or "z" (u <= 2).
        ``n > 1000``: "wasserstein" (numerical, u > 5), else "jensenshannon".

    References
    ----------
    Evidently, ``legacy/calculations/stattests/registry.py``, ``_get_default_stattest``.

    Examples
    --------
    >>> default_method(500, 40, True), default_method(500, 3, True), default_method(500, 2, False)
    ('ks', 'chisquare', 'z')
    >>> default_method(5000, 40, True), default_method(5000, 2, False)
    ('wasserstein', 'jensenshannon')
    """
    if reference_size < 0 or n_unique < 0:
        raise MetricsError("reference_size and n_unique must be >= 0")
    continuous = is_numeric and n_unique > FEW_VALUES
    if reference_size <= LARGE_REFERENCE:
        if continuous:
            return "ks"
        return "chisquare" if n_unique > BINARY else "z"
    return "wasserstein" if continuous else "jensenshannon"


def _pair(
    reference: npt.NDArray[Any] | Mapping[str, int],
    current: npt.NDArray[Any] | Mapping[str, int],
) -> Pair:
    if isinstance(reference, Mapping) and isinstance(current, Mapping):
        return CategoricalPair.of(reference, current)
    if isinstance(reference, Mapping) or isinstance(current, Mapping):
        raise MetricsError(
            "reference and current must be of the same kind: both value arrays (numerical) "
            "or both {category: count} mappings (categorical)"
        )
    return NumericPair.of(clean_numeric(reference, "reference"), clean_numeric(current, "current"))


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def column_drift(
    feature: str,
    reference: npt.NDArray[Any] | Mapping[str, int],
    current: npt.NDArray[Any] | Mapping[str, int],
    *,
    method: str | None = None,
    threshold: float | None = None,
    min_sample_size: int = 30,
    reference_size: int | None = None,
) -> DriftResult:
    """Test whether one column drifted between the reference and the current window.

    Parameters
    ----------
    feature
        Column name, copied to the result.
    reference, current
        Both numerical (one-dimensional arrays of numbers; ``None``, NaN, +inf and -inf are
        dropped, as Evidently does) or both categorical (``{category: count}``, nulls
        excluded by the caller).
    method
        A name from :func:`available_methods` (or an Evidently alias); None picks
        :func:`default_method` from ``n`` = reference size and ``u`` = distinct values over
        both sides.
    threshold
        Overrides the method's default threshold.
    min_sample_size
        Below this many current values, no verdict is given.
    reference_size
        The number of non-null reference rows when ``reference`` is a uniform sample of a
        larger reference; it decides the default method's ``n <= 1000`` rule. Defaults to the
        size of ``reference``.

    Returns
    -------
    DriftResult
        With ``drifted=None`` (and no statistic) when either side is empty, the current side has
        fewer than ``min_sample_size`` values, or the test is undefined on the data (e.g. a
        t-test of two constant samples). The method is reported in every case.

    Raises
    ------
    MetricsError
        Unknown method, a method that does not accept the column kind (e.g. "ks" on counts),
        mixed kinds, negative counts, a non-finite or negative threshold.

    References
    ----------
    Evidently, ``legacy/calculations/data_drift.py`` (``get_one_column_drift``) and
    ``legacy/calculations/stattests/``; ``docs/drift.md`` lists every method.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = column_drift("age", rng.normal(size=500), rng.normal(0.5, 1, size=200))
    >>> r.method, r.drifted, r.p_value < 0.05
    ('ks', True, True)
    >>> column_drift("country", {"DE": 60, "FR": 40}, {"DE": 5}).drifted is None
    True
    """
    if min_sample_size < 0:
        raise MetricsError("min_sample_size must be >= 0")
    if reference_size is not None and reference_size < 0:
        raise MetricsError("reference_size must be >= 0")
    pair = _pair(reference, current)
    is_numeric = isinstance(pair, NumericPair)
    n_ref, n_cur = pair.reference_size, pair.current_size
    if method is None:
        n_for_rule = n_ref if reference_size is None else reference_size
        spec = get_method(default_method(n_for_rule, pair.n_unique(), is_numeric))
    else:
        spec = get_method(method)
    if (is_numeric and not spec.numeric) or (not is_numeric and not spec.categorical):
        kind = "numerical" if is_numeric else "categorical"
        raise MetricsError(f"drift method {spec.name!r} does not apply to a {kind} column")
    used_threshold = spec.default_threshold if threshold is None else float(threshold)
    if not math.isfinite(used_threshold) or used_threshold < 0:
        raise MetricsError(f"threshold must be finite and >= 0, got {threshold!r}")

    no_verdict = DriftResult(feature, spec.name, None, None, used_threshold, None, n_ref, n_cur)
    if n_ref == 0 or n_cur == 0 or n_cur < min_sample_size:
        return no_verdict
    outcome = spec.func(pair)
    drifted = spec.is_drift(spec.score(outcome), used_threshold)
    if drifted is None:
        return no_verdict
    return DriftResult(
        feature=feature,
        method=spec.name,
        statistic=_finite_or_none(outcome.statistic),
        p_value=_finite_or_none(outcome.p_value),
        threshold=used_threshold,
        drifted=drifted,
        reference_size=n_ref,
        current_size=n_cur,
    )


def adjust_p_values(results: Sequence[DriftResult], correction: Correction) -> list[DriftResult]:
    """Correct the p-values of one window's columns for multiple testing.

    The family is every result that has a p-value (distance methods and results without a
    verdict are left as they are and do not count in ``m``). Each gets ``p_value_adjusted``;
    its verdict becomes ``adjusted <rule> threshold`` with its own method's rule and threshold.
    The raw ``p_value`` is kept. ``"none"`` returns the results unchanged
    (``p_value_adjusted`` stays None).

    Parameters
    ----------
    results
        Column results of one window (and one segment).
    correction
        "none", "bonferroni" (family-wise error) or "bh" (Benjamini-Hochberg false discovery
        rate).

    Returns
    -------
    list of DriftResult
        In the order given.

    References
    ----------
    Benjamini, Y. and Hochberg, Y. (1995), JRSS B 57(1), 289-300; Dunn, O. J. (1961), JASA
    56(293), 52-64. ``scipy.stats.false_discovery_control`` gives the same BH values.

    Examples
    --------
    >>> a = DriftResult("a", "ks", 0.2, 0.01, 0.05, True, 500, 100)
    >>> b = DriftResult("b", "ks", 0.1, 0.04, 0.05, True, 500, 100)
    >>> [(r.p_value_adjusted, r.drifted) for r in adjust_p_values([a, b], "bonferroni")]
    [(0.02, True), (0.08, False)]
    """
    if correction not in CORRECTIONS:
        raise MetricsError(f"unknown correction {correction!r}; known: {', '.join(CORRECTIONS)}")
    out = list(results)
    if correction == "none":
        return out
    family = [i for i, r in enumerate(out) if r.p_value is not None]
    raw = [p for p in (out[i].p_value for i in family) if p is not None]
    adjusted = adjust(raw, correction)
    for i, p_adj in zip(family, adjusted.tolist(), strict=True):
        spec = get_method(out[i].method)
        drifted = spec.is_drift(p_adj, out[i].threshold) if spec.kind == "p_value" else None
        out[i] = replace(
            out[i],
            p_value_adjusted=p_adj,
            drifted=out[i].drifted if drifted is None else drifted,
        )
    return out


def dataset_drift(
    results: Sequence[DriftResult], share: float = 0.5
) -> tuple[float | None, bool | None]:
    """Share of drifted columns among those with a verdict, and whether it reaches ``share``.

    Parameters
    ----------
    results
        Column results of one window.
    share
        The window drifts when the share of drifted columns is >= this (Evidently's
        ``drift_share``, 0.5).

    Returns
    -------
    tuple
        ``(share_drifted, dataset_drifted)``; ``(None, None)`` when no column has a verdict.

    References
    ----------
    Evidently, ``legacy/calculations/data_drift.py``, ``get_drift_for_columns``.

    Examples
    --------
    >>> rs = [DriftResult(f, "psi", 0.3, None, 0.1, d, 900, 90)
    ...       for f, d in [("a", True), ("b", False), ("c", None)]]
    >>> dataset_drift(rs)
    (0.5, True)
    """
    if not 0.0 <= share <= 1.0:
        raise MetricsError(f"share must lie in [0, 1], got {share}")
    verdicts = [r.drifted for r in results if r.drifted is not None]
    if not verdicts:
        return None, None
    drifted_share = sum(verdicts) / len(verdicts)
    return drifted_share, drifted_share >= share
