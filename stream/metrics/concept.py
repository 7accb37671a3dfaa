"""Concept drift within a window: Page-Hinkley on the per-event error stream.

Window performance compares whole windows; a sudden break in the relation between inputs
and label (concept drift) shows first in the per-event error (0/1 misclassification, or
absolute error for regression). :class:`PageHinkley` raises ``drift_detected`` within events
of the break, with River's interface (``update(x) -> self``, ``drift_detected``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from stream.config import ModelSettings
from stream.errors import MetricsError
from stream.metrics.values import as_number, as_probability, class_key

Mode = Literal["both", "up", "down"]


class PageHinkley:
    """Page-Hinkley change detector (two-sided CUSUM on deviations from the running mean).

    For each value ``x_t``: the running mean ``m_t`` is updated first, then

    - ``U_t = alpha * U_{t-1} + (x_t - m_t - delta)`` and ``U_min = min(U_min, U_t)``;
      an *increase* is detected when ``U_t - U_min > threshold``;
    - ``D_t = alpha * D_{t-1} + (x_t - m_t + delta)`` and ``D_max = max(D_max, D_t)``;
      a *decrease* is detected when ``D_max - D_t > threshold``.

    No detection before ``min_instances`` values. After a detection the next ``update``
    starts from scratch (River's behaviour). For an error stream, ``mode="up"`` (only
    deterioration) is the usual choice.

    Parameters
    ----------
    min_instances
        Values seen before a detection is possible.
    delta
        Magnitude of change tolerated (a drift slack).
    threshold
        Detection threshold (lambda).
    alpha
        Forgetting factor of the cumulative sums (1 = no forgetting).
    mode
        "up", "down" or "both".

    References
    ----------
    E. S. Page (1954), "Continuous Inspection Schemes", Biometrika 41(1/2), 100-115.
    River, ``river/drift/page_hinkley.py`` (same parameters, defaults and interface).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> stream = np.concatenate([rng.normal(0, 1, 500), rng.normal(3, 1, 500)])
    >>> ph = PageHinkley(mode="up")
    >>> next(i for i, x in enumerate(stream) if ph.update(float(x)).drift_detected)
    513
    """

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Mode = "both",
    ) -> None:
        if mode not in ("both", "up", "down"):
            raise MetricsError(f"mode must be 'both', 'up' or 'down', got {mode!r}")
        if min_instances < 1 or threshold <= 0 or not 0 < alpha <= 1 or delta < 0:
            raise MetricsError("invalid Page-Hinkley parameters")
        self.min_instances = int(min_instances)
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.mode: Mode = mode
        self.drift_detected = False
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.sum_increase = 0.0
        self.min_increase = math.inf
        self.sum_decrease = 0.0
        self.max_decrease = -math.inf

    def update(self, x: float) -> PageHinkley:
        """Feed one value; read :attr:`drift_detected` afterwards."""
        if self.drift_detected:
            self._reset()
            self.drift_detected = False
        self.n += 1
        self.mean += (x - self.mean) / self.n
        dev = x - self.mean
        self.sum_increase = self.alpha * self.sum_increase + dev - self.delta
        self.min_increase = min(self.min_increase, self.sum_increase)
        self.sum_decrease = self.alpha * self.sum_decrease + dev + self.delta
        self.max_decrease = max(self.max_decrease, self.sum_decrease)
        if self.n >= self.min_instances:
            up = self.sum_increase - self.min_increase > self.threshold
            down = self.max_decrease - self.sum_decrease > self.threshold
            self.drift_detected = (up and self.mode != "down") or (down and self.mode != "up")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (infinities as None), for a Faust table or a changelog."""
        return {
            "params": [self.min_instances, self.delta, self.threshold, self.alpha, self.mode],
            "n": self.n,
            "mean": self.mean,
            "si": self.sum_increase,
            "mi": None if math.isinf(self.min_increase) else self.min_increase,
            "sd": self.sum_decrease,
            "md": None if math.isinf(self.max_decrease) else self.max_decrease,
            "drift": self.drift_detected,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PageHinkley:
        mi, delta, thr, alpha, mode = d["params"]
        out = cls(mi, delta, thr, alpha, mode)
        out.n = int(d["n"])
        out.mean = float(d["mean"])
        out.sum_increase = float(d["si"])
        out.min_increase = math.inf if d["mi"] is None else float(d["mi"])
        out.sum_decrease = float(d["sd"])
        out.max_decrease = -math.inf if d["md"] is None else float(d["md"])
        out.drift_detected = bool(d["drift"])
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PageHinkley):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def event_error(prediction: Mapping[str, Any], label: Any, model: ModelSettings) -> float | None:
    """The per-event error fed to the detector: 0/1 misclassification, |error| for regression.

    ``None`` when the event cannot be scored (no label, no usable prediction).
    """
    if isinstance(label, Mapping):
        label = label.get("label")
    pred = prediction.get("prediction")
    if model.task == "regression":
        y, p = as_number(label), as_number(pred)
        return None if y is None or p is None else abs(p - y)
    y_key = class_key(label)
    if y_key is None:
        return None
    if model.task == "binary":
        pos = class_key(model.positive_label)
        prob = as_probability(prediction.get("probability"))
        if isinstance(pred, float) and not pred.is_integer() and prob is None:
            prob, pred = as_probability(pred), None
        p_key = class_key(pred)
        if p_key is not None:
            decision = p_key == pos
        elif prob is not None:
            decision = prob >= 0.5
        else:
            return None
        return 0.0 if decision == (y_key == pos) else 1.0
    p_key = class_key(pred)
    return None if p_key is None else float(p_key != y_key)


# ---------------------------------------------------------------------- window-level tests
def accuracy_drop_test(
    reference_correct: int, reference_n: int, correct: int, n: int, margin: float = 0.0
) -> tuple[float | None, float | None]:
    """One-sided two-proportion z-test that a window's accuracy is below the reference's
    by more than ``margin``.

    With ``margin = 0``, the pooled form: ``z = (p_ref - p) / sqrt(q (1 - q) (1/n_ref + 1/n))``
    with ``q`` the pooled proportion, and ``p_value = P(Z >= z)``; its square equals
    Pearson's chi-square on the 2x2 table without continuity correction. With a margin the
    null hypothesis is ``p_ref - p <= margin`` and the variance is not pooled: Agresti and
    Caffo's adjustment (one success and one failure added to each side) keeps it finite when
    a side is all-correct. Why a test and not a fixed threshold: a window of 50 labels and
    one of 50 000 do not say the same about a 2-point drop; why a margin: with large
    windows a drop too small to matter is still "significant".

    Returns ``(z, p_value)``; ``(None, None)`` without labels on either side, and ``z = 0``,
    ``p = 0.5`` when both sides are all-correct or all-wrong (no variance: no evidence).

    Parameters
    ----------
    reference_correct, reference_n
        Correct predictions and labelled pairs of the reference.
    correct, n
        The same for the window.

    margin
        The drop tolerated under the null hypothesis (absolute accuracy).

    References
    ----------
    A. Agresti (2013), Categorical Data Analysis, 3rd ed., section 3.1 (two proportions).
    A. Agresti, B. Caffo (2000), "Simple and effective confidence intervals for proportions
    and differences of proportions", The American Statistician 54(4), 280-288.

    Examples
    --------
    >>> z, p = accuracy_drop_test(950, 1000, 880, 1000)
    >>> round(z, 3), p < 1e-6
    (5.613, True)
    >>> z, p = accuracy_drop_test(1000, 1000, 920, 1000, margin=0.02)
    >>> round(z, 2), p < 1e-6
    (6.9, True)
    """
    from scipy.stats import norm

    if reference_n <= 0 or n <= 0:
        return None, None
    if margin > 0:
        a, b = (reference_correct + 1) / (reference_n + 2), (correct + 1) / (n + 2)
        se = math.sqrt(a * (1 - a) / (reference_n + 2) + b * (1 - b) / (n + 2))
        z = (a - b - margin) / se
        return z, float(norm.sf(z))
    p_ref, p = reference_correct / reference_n, correct / n
    pooled = (reference_correct + correct) / (reference_n + n)
    var = pooled * (1 - pooled) * (1 / reference_n + 1 / n)
    if var <= 0:
        return 0.0, 0.5
    z = (p_ref - p) / math.sqrt(var)
    return z, float(norm.sf(z))


def cusum_error_step(
    previous: float, errors: int, n: int, p0: float, delta: float, cap: float
) -> float:
    """One window of a one-sided Bernoulli CUSUM on the error stream (Page's CUSUM).

    ``S_w = min(cap, max(0, S_{w-1} + LLR_w))`` with ``LLR_w = k log(p1/p0) +
    (n - k) log((1 - p1)/(1 - p0))`` for ``k`` errors in ``n`` labelled pairs, ``p0`` the
    reference error rate and ``p1 = p0 + delta`` the smallest rise worth detecting. This is
    the per-pair CUSUM with its floor at zero applied between windows instead of between
    pairs: it needs only the window's counts (the rows carry them), so pairs need no order
    within a window and a late label revises one window's term. The cap bounds how long the
    statistic takes to fall back under the threshold once the errors are back to ``p0``
    (without it, a long drift would keep an alert open for many windows after it ended).

    Parameters
    ----------
    previous
        The statistic after the previous window (0 at the start).
    errors, n
        The window's errors and labelled pairs.
    p0
        Reference error rate, in (0, 1) (smooth a zero: see :func:`smoothed_rate`).
    delta
        Absolute rise of the error rate to detect.
    cap
        Upper bound of the statistic.

    References
    ----------
    E. S. Page (1954), "Continuous Inspection Schemes", Biometrika 41, 100-115.
    D. C. Montgomery, Introduction to Statistical Quality Control, ch. 9 (Bernoulli CUSUM).

    Examples
    --------
    >>> s = cusum_error_step(0.0, 10, 100, 0.1, 0.05, 50.0)   # as expected: stays low
    >>> s
    0.0
    >>> round(cusum_error_step(s, 20, 100, 0.1, 0.05, 50.0), 3)  # twice the errors
    3.537
    """
    p1 = min(p0 + delta, 1 - 1e-9)
    llr = errors * math.log(p1 / p0) + (n - errors) * math.log((1 - p1) / (1 - p0))
    return min(cap, max(0.0, previous + llr))


def smoothed_rate(events: int, n: int) -> float:
    """``(events + 0.5) / (n + 1)``: a rate never 0 or 1, so a reference with no errors
    still gives the CUSUM a finite log-likelihood ratio (a Jeffreys-like smoothing).

    Examples
    --------
    >>> smoothed_rate(0, 999)
    0.0005
    """
    return (events + 0.5) / (n + 1)
