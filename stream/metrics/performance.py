"""Realised performance from the accumulated labelled state (pure functions).

Conventions (also in ``docs/metrics.md``):

- binary: positive = ``ModelSettings.positive_label``; precision/recall/F1 are ``None`` when
  their denominator is 0 (undefined), not 0;
- multiclass: macro averages over the classes seen in labels or predictions; inside a macro
  average an undefined per-class precision/recall counts as 0 (scikit-learn's
  ``zero_division=0``);
- log loss: mean of ``-log(p_true)`` with ``p`` clipped to ``[1e-15, 1 - 1e-15]``; exact
  (an exact running sum), not sampled; multiclass scores are not renormalised;
- ROC AUC (binary): Mann-Whitney ``U / (n1 * n0)`` with mid-ranks for ties, on the labelled
  (score, label) row sample: exact up to ``sample_capacity`` labelled rows, a uniform-sample
  estimate beyond (standard error <= ~``0.5 / sqrt(min(n1, n0) in the sample)``); ``None``
  when only one class is present;
- regression: error = prediction - label; ``mape`` is a fraction, over rows whose label is
  not 0 (``None`` if there are none); ``r2 = 1 - SSE / SST``, ``None`` when SST = 0
  (constant labels). SST is computed from exact sums, so there is no cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
from scipy.stats import rankdata

from stream.metrics.accumulators import SumSet
from stream.metrics.sampling import FloatArray
from stream.metrics.window import WindowState

Metrics = dict[str, float | None]


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def roc_auc(scores: FloatArray, labels: FloatArray) -> float | None:
    """Area under the ROC curve = P(score of a positive > score of a negative) + ties / 2.

    Parameters
    ----------
    scores
        Predicted probability (or any score) of the positive class.
    labels
        1.0 for positive, 0.0 for negative.

    Returns
    -------
    float or None
        ``None`` when either class is absent (the AUC is undefined).

    References
    ----------
    Hanley & McNeil (1982), "The meaning and use of the area under a ROC curve".

    Examples
    --------
    >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0.0, 0.0, 1.0, 1.0]))
    0.75
    """
    y = np.asarray(labels) > 0.5
    n1 = int(y.sum())
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    u = float(ranks[y].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)


def binary_metrics(
    counts: Mapping[str, int], logloss: SumSet, scores: FloatArray, labels: FloatArray
) -> Metrics:
    """Accuracy, precision, recall, F1, confusion counts, log loss and ROC AUC (binary)."""
    tp, fp, tn, fn = (int(counts[k]) for k in ("tp", "fp", "tn", "fn"))
    n = tp + fp + tn + fn
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    out: Metrics = {
        "accuracy": _div(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }
    n_ll = logloss.counts["n_ll"]
    out["log_loss"] = logloss.value("logloss") / n_ll if n_ll else None
    out["roc_auc"] = roc_auc(scores, labels) if scores.size else None
    return out


def multiclass_metrics(confusion: Mapping[str, int], logloss: SumSet) -> Metrics:
    """Accuracy and macro precision/recall/F1 from ``{"true\\x1fpred": count}``; log loss."""
    cells = [(k.split("\x1f", 1), v) for k, v in confusion.items()]
    n = sum(v for _, v in cells)
    classes = sorted({t for (t, _), _ in cells} | {p for (_, p), _ in cells})
    correct = sum(v for (t, p), v in cells if t == p)
    out: Metrics = {"accuracy": _div(correct, n)}
    if classes:
        prec, rec, f1 = [], [], []
        for c in classes:
            tp = sum(v for (t, p), v in cells if t == c and p == c)
            pred_c = sum(v for (_, p), v in cells if p == c)
            true_c = sum(v for (t, _), v in cells if t == c)
            pr = tp / pred_c if pred_c else 0.0
            rc = tp / true_c if true_c else 0.0
            prec.append(pr)
            rec.append(rc)
            f1.append(2 * tp / (pred_c + true_c) if pred_c + true_c else 0.0)
        out["precision"] = float(np.mean(prec))
        out["recall"] = float(np.mean(rec))
        out["f1"] = float(np.mean(f1))
    else:
        out.update(precision=None, recall=None, f1=None)
    n_ll = logloss.counts["n_ll"]
    out["log_loss"] = logloss.value("logloss") / n_ll if n_ll else None
    return out


def regression_metrics(sums: SumSet) -> Metrics:
    """MAE, RMSE, MAPE, mean error (bias) and R^2 from the exact regression sums."""
    n = sums.counts["n"]
    if n == 0:
        return dict.fromkeys(("mae", "rmse", "mape", "mean_error", "r2"))
    sse = sums.value("sq")
    out: Metrics = {
        "mae": sums.value("abs") / n,
        "rmse": math.sqrt(sse / n) if sse >= 0 or math.isnan(sse) else None,
        "mean_error": sums.value("err") / n,
        "mape": sums.value("ape") / sums.counts["n_ape"] if sums.counts["n_ape"] else None,
    }
    sy, sy2, sq = sums.sums["y"].fraction(), sums.sums["y2"].fraction(), sums.sums["sq"].fraction()
    if sy is None or sy2 is None or sq is None:
        out["r2"] = math.nan
    else:
        sst = sy2 - sy * sy / Fraction(n)
        out["r2"] = float(1 - sq / sst) if sst > 0 else None
    return out


def performance_metrics(state: WindowState) -> dict[str, float | None]:
    """Realised performance of the labelled rows of ``state`` (empty without labels)."""
    if state.n_labelled == 0:
        return {}
    if state.task == "binary":
        return binary_metrics(
            state.binary.counts,
            state.binary,
            state.label_sample.column("score"),
            state.label_sample.column("y"),
        )
    if state.task == "multiclass":
        return multiclass_metrics(state.confusion, state.multiclass_logloss)
    return regression_metrics(state.regression)
