"""Label-free performance estimate from predicted probabilities (the idea of CBPE).

If the model's scores are calibrated, a row predicted positive with probability ``p`` is a
true positive with probability ``p`` and a false positive with probability ``1 - p``; a row
predicted negative is a false negative with probability ``p``, a true negative otherwise.
Summing gives the expected confusion matrix of the window without any label::

    E[TP] = sum_{pred +} p        E[FP] = sum_{pred +} (1 - p)
    E[FN] = sum_{pred -} p        E[TN] = sum_{pred -} (1 - p)

    expected_accuracy  = (E[TP] + E[TN]) / n   (= mean(max(p, 1 - p)) at threshold 0.5)
    expected_precision = E[TP] / (E[TP] + E[FP])
    expected_recall    = E[TP] / (E[TP] + E[FN])
    expected_f1        = 2 E[TP] / (2 E[TP] + E[FP] + E[FN])

Accuracy is an exact expectation; precision, recall and F1 are ratios of expectations (the
CBPE approximation, biased by O(1/n)). For multiclass models, expected accuracy is the
mean score of the predicted class (``mean(max score)`` when the prediction is the argmax).
All of it is only as good as the calibration: on a window with labels, compare with the
realised ``performance`` rows (the difference is a calibration/concept-shift signal).

References
----------
NannyML, "Confidence-based Performance Estimation (CBPE)", https://nannyml.readthedocs.io
"""

from __future__ import annotations

from stream.metrics.accumulators import SumSet

Metrics = dict[str, float | None]


def expected_metrics(est: SumSet, task: str) -> Metrics:
    """Expected accuracy (and, for binary, precision/recall/F1) from the estimate sums.

    Examples
    --------
    >>> import numpy as np
    >>> s = SumSet(("conf", "tp", "fn"), ("n", "pos"))
    >>> s.sums["conf"].add(np.array([0.9, 0.8])); s.sums["tp"].add(np.array([0.9]))
    >>> s.sums["fn"].add(np.array([0.2])); s.counts.update(n=2, pos=1)
    >>> round(expected_metrics(s, "binary")["expected_accuracy"], 12)
    0.85
    """
    n = est.counts["n"]
    if n == 0 or task == "regression":
        return {}
    out: Metrics = {"expected_accuracy": est.value("conf") / n}
    if task == "binary":
        tp = est.value("tp")
        fp = est.counts["pos"] - tp
        fn = est.value("fn")
        out["expected_precision"] = tp / (tp + fp) if tp + fp > 0 else None
        out["expected_recall"] = tp / (tp + fn) if tp + fn > 0 else None
        out["expected_f1"] = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn > 0 else None
    return out
