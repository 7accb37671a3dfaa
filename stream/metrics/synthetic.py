"""Generated models under covariate shift, for checking the label-free estimate.

Pure numpy, seeded. The inputs move from window to window (covariate shift) while the
relation between inputs and label stays fixed (no concept drift), which is exactly the case
CBPE is meant for; ``flip`` adds concept drift (labels flipped with that probability) to
check that reconciliation catches it. Used by the unit tests, the integration test and
``load_tests/bench_estimate.py`` (which regenerates the table in docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from stream.metrics.sampling import FloatArray

#: Mean of the first input per window: realised accuracy grows from about 0.73 to 0.80.
SHIFTS: Final = (0.0, 0.2, 0.4, 0.6, 0.8, 1.05)


@dataclass(frozen=True, slots=True)
class BinaryData:
    """Scores and labels of one sample. ``scores[name]`` for each model on the same inputs."""

    x: FloatArray  # (n, 2) inputs
    y: npt.NDArray[np.int64]  # 0/1 labels
    scores: dict[str, FloatArray]


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def binary_sample(
    rng: np.random.Generator, n: int, shift: float = 0.0, flip: float = 0.0
) -> BinaryData:
    """``n`` rows; P(y=1|x) = sigmoid(1.4 x1 + 0.5 x2), x1 ~ N(shift, 1), x2 ~ N(0, 1).

    Two models score the same rows: ``calibrated`` (the true probability) and
    ``overconfident`` (logit x 2.5: same ranking, scores pushed towards 0 and 1).

    Examples
    --------
    >>> d = binary_sample(np.random.default_rng(0), 3)
    >>> sorted(d.scores), d.y.shape
    (['calibrated', 'overconfident'], (3,))
    """
    x = np.column_stack([rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)])
    z = 1.4 * x[:, 0] + 0.5 * x[:, 1]
    y = (rng.random(n) < _sigmoid(z)).astype(np.int64)
    if flip > 0:
        y = np.where(rng.random(n) < flip, 1 - y, y)
    return BinaryData(x, y, {"calibrated": _sigmoid(z), "overconfident": _sigmoid(2.5 * z)})


@dataclass(frozen=True, slots=True)
class MulticlassData:
    x: FloatArray
    y: npt.NDArray[np.int64]  # class index
    scores: FloatArray  # (n, k) the model's scores (rows sum to 1)


_W: Final = np.array([[1.2, 0.0], [-0.6, 1.0], [-0.6, -1.0]])


def multiclass_sample(
    rng: np.random.Generator, n: int, shift: float = 0.0, temperature: float = 0.5
) -> MulticlassData:
    """Three classes, P(y|x) = softmax(W x); the model scores softmax(W x / temperature).

    ``temperature`` < 1 makes the model over-confident (same argmax as the truth).

    Examples
    --------
    >>> multiclass_sample(np.random.default_rng(0), 4).scores.shape
    (4, 3)
    """
    x = np.column_stack([rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)])
    logits = x @ _W.T
    true = np.exp(logits - logits.max(axis=1, keepdims=True))
    true /= true.sum(axis=1, keepdims=True)
    y = (rng.random((n, 1)) > np.cumsum(true, axis=1)).sum(axis=1).astype(np.int64)
    y = np.minimum(y, 2)
    s = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)
    return MulticlassData(x, y, s / s.sum(axis=1, keepdims=True))


__all__ = ["SHIFTS", "BinaryData", "MulticlassData", "binary_sample", "multiclass_sample"]
