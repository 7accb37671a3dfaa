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
