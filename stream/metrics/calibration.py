"""Calibration of predicted scores on the labelled reference (isotonic regression, as CBPE).

The label-free estimate is only as good as the scores' calibration: an over-confident model
(scores too close to 0 and 1) makes the expected accuracy far too high. NannyML's CBPE first
fits an isotonic regression of the label on the score on the labelled reference, then takes
expectations with the calibrated scores. We do the same, on the reference's labelled score
histograms (:mod:`.scorebins`): a weighted isotonic fit over the bin centres, which is
scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` on the binned scores (the same
pool-adjacent-violators solution, the same piecewise-linear interpolation between block ends,
the same clipping outside the fitted range).

Maps kept (a :class:`Calibration`):

- binary: ``"1"``, P(y = positive | score), fitted on every labelled reference row;
- multiclass, per class ``c``: ``"c\\x1f+"``, P(y = c | score of c) on rows *predicted* c,
  and ``"c\\x1f-"`` on rows predicted otherwise. This is CBPE's one-vs-rest calibration split by
  the model's decision, a deliberate deviation: CBPE calibrates each class on all rows and
  then renormalises each row's calibrated scores to sum to 1, which needs every row's whole
  score vector (not mergeable from histograms); conditioning on the decision is what the
  expected confusion matrix needs (E[TP_c] is a sum over rows predicted c) and keeps the
  estimate a sum over bins. A split with fewer than :data:`MIN_SPLIT_ROWS` labelled rows
  falls back to the class's pooled map ``"c"``.

CBPE also skips calibration when a cross-validated check says it does not lower the
expected calibration error; we always calibrate once the reference has enough labelled rows
(an isotonic fit of calibrated scores is close to the identity, see the benchmark).

References
----------
Barlow, Bartholomew, Bremner & Brunk (1972), "Statistical Inference under Order
Restrictions" (pool adjacent violators). NannyML, "Confidence-based Performance Estimation".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from stream.metrics.sampling import FloatArray
from stream.metrics.scorebins import BIN_SCORES, ScoreBins

MIN_SPLIT_ROWS: Final = 100
SEP: Final = "\x1f"


def pav(y: FloatArray, w: FloatArray) -> FloatArray:
    """Weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators).

    Examples
    --------
    >>> pav(np.array([1.0, 3.0, 2.0, 4.0]), np.ones(4)).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y.tolist(), w.tolist(), strict=True):
        means.append(yi)
        weights.append(wi)
        sizes.append(1)
        while len(means) > 1 and means[-2] >= means[-1]:
            m2, w2, s2 = means.pop(), weights.pop(), sizes.pop()
            wt = weights[-1] + w2
            means[-1] = (means[-1] * weights[-1] + m2 * w2) / wt
            weights[-1] = wt
            sizes[-1] += s2
    return np.repeat(np.array(means, dtype=np.float64), sizes)


@dataclass(frozen=True, slots=True)
class IsotonicMap:
    """A fitted non-decreasing map: linear interpolation between ``xs`` -> ``ys``, clipped.

    Parameters
    ----------
    xs, ys
        Knots (increasing ``xs``); outside ``[xs[0], xs[-1]]`` the end values hold.
    rows
        Labelled rows the map was fitted on.
    """

    xs: FloatArray
    ys: FloatArray
    rows: int
    #: For a map fitted on score bins: first bin of each constant block and its labelled
    #: rows. The error of a block's fitted value, ``f (1 - f) / rows``, is what the estimate
    #: inherits from a finite reference (its band counts it; :func:`block_variance`).
    block_start: tuple[int, ...] = ()
    block_rows: tuple[float, ...] = ()

    @classmethod
    def fit(cls, x: FloatArray, y: FloatArray, w: FloatArray) -> IsotonicMap:
        """Isotonic regression of ``y`` on ``x`` with weights ``w``, as scikit-learn fits it.

        Ties in ``x`` are pooled first (weighted mean); after the fit, only the first and
        last knot of each constant block are kept.

        Examples
        --------
        >>> m = IsotonicMap.fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]),
        ...                     np.ones(4))
        >>> m(np.array([0.0, 0.25, 1.0])).tolist()
        [0.0, 0.5, 1.0]
        """
        order = np.argsort(x, kind="stable")
        x, y, w = x[order], y[order], w[order]
        keep = w > 0
        x, y, w = x[keep], y[keep], w[keep]
        if x.size == 0:
            return cls(np.array([0.0, 1.0]), np.array([0.5, 0.5]), 0)
        ux, start = np.unique(x, return_index=True)
        wsum = np.add.reduceat(w, start)
        ymean = np.add.reduceat(y * w, start) / wsum
        fitted = pav(ymean, wsum)
        if fitted.size > 2:
            inner = (fitted[:-2] != fitted[1:-1]) | (fitted[1:-1] != fitted[2:])
            kept = np.concatenate([[True], inner, [True]])
            ux, fitted = ux[kept], fitted[kept]
        return cls(ux, fitted, round(float(w.sum())))

    @classmethod
    def fit_bins(cls, positives: FloatArray, totals: FloatArray) -> IsotonicMap:
        """Fit on a labelled histogram: per bin, positive count and total count."""
        share = np.divide(positives, totals, out=np.zeros_like(totals), where=totals > 0)
        fitted = cls.fit(BIN_SCORES, share, totals)
        used = np.flatnonzero(totals > 0)
        if used.size == 0:
            return fitted
        values = pav(share[used], totals[used])
        new = np.concatenate([[True], values[1:] != values[:-1]])
        starts = used[new]
        rows = np.add.reduceat(totals[used], np.flatnonzero(new))
        return cls(fitted.xs, fitted.ys, fitted.rows, tuple(int(b) for b in starts),
                   tuple(float(r) for r in rows))

    def block_variance(self, weights: FloatArray) -> float:
        """Variance that the reference's finite size puts on ``sum_b weights_b * f(bin b)``.

        Bins of one block share one fitted value (the mean label of the block's reference
        rows), whose variance is about ``f (1 - f) / rows``; blocks are taken independent.
        Zero for a map without blocks.

        Examples
        --------
        >>> from stream.metrics.scorebins import N_BINS
        >>> t = np.zeros(N_BINS); t[1000] = 100.0
        >>> m = IsotonicMap.fit_bins(t * 0.5, t)
        >>> w = np.zeros(N_BINS); w[1000] = 1.0
        >>> round(m.block_variance(w), 6)
        0.0025
        """
        if not self.block_start:
            return 0.0
        starts = np.array(self.block_start)
        block = np.clip(np.searchsorted(starts, np.arange(weights.size), side="right") - 1,
                        0, None)
        per_block = np.bincount(block, weights=weights, minlength=starts.size)
        f = self(BIN_SCORES[starts])
        return float(np.sum(per_block**2 * f * (1 - f) / np.array(self.block_rows)))

    def __call__(self, scores: FloatArray) -> FloatArray:
        return np.asarray(np.interp(scores, self.xs, self.ys), dtype=np.float64)

    def to_json(self) -> list[Any]:
        return [self.xs.tolist(), self.ys.tolist(), self.rows, list(self.block_start),
                list(self.block_rows)]

    @classmethod
    def from_json(cls, data: list[Any]) -> IsotonicMap:
        return cls(np.array(data[0], dtype=np.float64), np.array(data[1], dtype=np.float64),
                   int(data[2]), tuple(int(b) for b in data[3]),
                   tuple(float(r) for r in data[4]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IsotonicMap):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Calibration:
    """The calibration maps of one model, fitted on its labelled reference.

    ``rows`` is the number of labelled reference rows with a usable score; the evaluation
    uses the maps only when it reaches ``MetricsSettings.min_calibration_rows``.
    """

    task: str
    rows: int
    maps: Mapping[str, IsotonicMap] = field(default_factory=dict)

    @classmethod
    def fit(cls, task: str, labelled: ScoreBins) -> Calibration | None:
        """Maps from the labelled histograms of a reference state (None for regression)."""
        if task == "binary":
            pos = labelled.sum_of(g for g in labelled.groups if g.endswith(SEP + "1"))
            tot = labelled.sum_of(labelled.groups)
            rows = int(tot.sum())
            if rows == 0 or pos.sum() in (0, rows):  # one class only: nothing to calibrate on
                return cls(task, rows)
            fitted = IsotonicMap.fit_bins(pos.astype(np.float64), tot.astype(np.float64))
            return cls(task, rows, {"1": fitted})
        if task != "multiclass":
            return None
        classes = sorted({g.split(SEP)[0] for g in labelled.groups})
        maps: dict[str, IsotonicMap] = {}
        rows = 0
        for c in classes:
            split: dict[str, tuple[FloatArray, FloatArray]] = {}
            for side in ("+", "-"):
                pos = labelled.get(f"{c}{SEP}{side}{SEP}1")
                tot = pos + labelled.get(f"{c}{SEP}{side}{SEP}0")
                split[side] = (pos.astype(np.float64), tot.astype(np.float64))
            p_all = split["+"][0] + split["-"][0]
            t_all = split["+"][1] + split["-"][1]
            rows = max(rows, int(t_all.sum()))
            pooled = IsotonicMap.fit_bins(p_all, t_all)
            maps[c] = pooled
            for side, (p, t) in split.items():
                maps[f"{c}{SEP}{side}"] = (
                    IsotonicMap.fit_bins(p, t) if t.sum() >= MIN_SPLIT_ROWS else pooled
                )
        return cls(task, rows, maps)

    def map_for(self, key: str) -> IsotonicMap | None:
        return self.maps.get(key)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "rows": self.rows,
                "maps": {k: v.to_json() for k, v in sorted(self.maps.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(str(data["task"]), int(data["rows"]),
                   {k: IsotonicMap.from_json(v) for k, v in data["maps"].items()})


__all__ = ["MIN_SPLIT_ROWS", "Calibration", "IsotonicMap", "pav"]
