"""Multiple-testing corrections of p-values across the features of one window.

With many features x segments x windows, raw ``p < 0.05`` alarms all the time; these
corrections keep the family-wise error rate (Bonferroni) or the false discovery rate
(Benjamini-Hochberg) of one window at the chosen level.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from stream.errors import MetricsError

Correction = Literal["none", "bonferroni", "bh"]
CORRECTIONS: tuple[Correction, ...] = ("none", "bonferroni", "bh")

FloatArray = npt.NDArray[np.float64]


def _as_p_values(p_values: npt.ArrayLike) -> FloatArray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise MetricsError(f"expected a one-dimensional array of p-values, got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise MetricsError("p-values must lie in [0, 1] (and not be NaN)")
    return p


def bonferroni(p_values: npt.ArrayLike) -> FloatArray:
    """Bonferroni-adjusted p-values: ``min(1, m * p)`` over a family of ``m`` tests.

    Parameters
    ----------
    p_values
        Raw p-values of the family, each in [0, 1].

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same order; rejecting ``adjusted <= alpha`` keeps the family-wise
        error rate at ``alpha``.

    References
    ----------
    Dunn, O. J. (1961). Multiple comparisons among means. JASA 56(293), 52-64.

    Examples
    --------
    >>> bonferroni([0.01, 0.04, 0.5]).tolist()
    [0.03, 0.12, 1.0]
    """
    p = _as_p_values(p_values)
    adjusted: FloatArray = np.minimum(p * p.size, 1.0)
    return adjusted


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (step-up, false discovery rate).

    With the raw p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    rank ``i`` is ``min(1, min_{j >= i} m * p_(j) / j)``; rejecting ``adjusted <= q`` is the
    BH procedure at level ``q``. Same values as ``scipy.stats.false_discovery_control(p,
    method="bh")``.

    Parameters
    ----------
    p_values
        Raw p-values of the family, each in [0, 1].

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the order of the input.

    References
    ----------
    Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical
    and powerful approach to multiple testing. JRSS B 57(1), 289-300.

    Examples
    --------
    >>> [round(v, 6) for v in benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).tolist()]
    [0.04, 0.053333, 0.053333, 0.5]
    """
    p = _as_p_values(p_values)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * (m / np.arange(1, m + 1))  # factor >= 1: never below the raw p
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(ranked, 1.0)
    return adjusted


def adjust(p_values: npt.ArrayLike, correction: Correction) -> FloatArray:
    """Adjust a family of p-values with ``correction`` ("none" returns a copy).

    Examples
    --------
    >>> adjust([0.02, 0.3], "bonferroni").tolist()
    [0.04, 0.6]
    """
    if correction == "none":
        return _as_p_values(p_values).copy()
    if correction == "bonferroni":
        return bonferroni(p_values)
    if correction == "bh":
        return benjamini_hochberg(p_values)
    raise MetricsError(f"unknown correction {correction!r}; known: {', '.join(CORRECTIONS)}")
