"""Mergeable histograms of predicted scores on a fixed logit grid (for the label-free estimate).

Why a histogram and not sums: the estimate needs every score *after* calibration, and the
calibration map belongs to the reference profile, which stage 1 may not have. Exact integer
counts per score bin are mergeable across partitions in any order, and at evaluation time
(stage 2, where the reference is known) the map is applied to each bin.

The grid is uniform in ``logit(p)`` on ``[-16, 16]`` with :data:`N_BINS` = 2048 bins
(width 1/64 in logit): at most 0.004 wide in probability near 0.5 and much finer towards 0
and 1, where over-confident models put their scores; the two outer bins also take everything
below ``sigmoid(-16)`` (about 1.1e-7) and above ``1 - 1.1e-7``. A bin stands for its centre
score :data:`BIN_SCORES`. The error this costs is bounded per window at evaluation (see
:func:`stream.metrics.estimate.binning_bound`): for a monotone calibration map ``f``, the
expected accuracy moves by at most ``sum_b c_b (f(high_b) - f(low_b)) / n``.

Groups name what a bin count is conditioned on, e.g. ``"+"`` (binary, predicted positive) or
``"a\\x1f-"`` (multiclass: the score of class ``a`` on rows not predicted ``a``); labelled
histograms add the label's side (``"+\\x1f1"``). State: 16 KB per live group (dense
``int64``), serialised sparse (non-empty bins only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from stream.metrics.sampling import FloatArray
from stream.metrics.values import as_probability, class_key

IntArray = npt.NDArray[np.int64]

N_BINS: Final = 2048
Z_MAX: Final = 16.0
_WIDTH: Final = 2 * Z_MAX / N_BINS
_EDGES_Z: Final = np.linspace(-Z_MAX, Z_MAX, N_BINS + 1)


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


#: Representative score of each bin: the sigmoid of its centre in logit.
BIN_SCORES: Final[FloatArray] = _sigmoid((_EDGES_Z[:-1] + _EDGES_Z[1:]) / 2)
#: Lowest and highest score a bin can hold (the outer bins reach 0 and 1).
BIN_LOW: Final[FloatArray] = np.concatenate([[0.0], _sigmoid(_EDGES_Z[1:-1])])
BIN_HIGH: Final[FloatArray] = np.concatenate([_sigmoid(_EDGES_Z[1:-1]), [1.0]])


def bin_index(scores: FloatArray) -> npt.NDArray[np.intp]:
    """Bin of each score in ``[0, 1]`` (0 and 1 go to the outer bins).

    Examples
    --------
    >>> bin_index(np.array([0.0, 0.5, 1.0])).tolist()
    [0, 1024, 2047]
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        z = np.log(p) - np.log1p(-p)
    idx = np.floor((np.clip(z, -Z_MAX, Z_MAX) + Z_MAX) / _WIDTH)
    out: npt.NDArray[np.intp] = np.clip(idx, 0, N_BINS - 1).astype(np.intp)
    return out


class ScoreBins:
    """Exact counts of scores per (group, bin); ``merge`` equals one pass over both inputs.

    Examples
    --------
    >>> a = ScoreBins(); a.add("+", np.array([0.9, 0.8]))
    >>> b = ScoreBins(); b.add("+", np.array([0.9])); b.add("-", np.array([0.1]))
    >>> m = a.merge(b); (m.total("+"), m.total("-"))
    (3, 1)
    """

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[str, IntArray] = {}

    def add(self, group: str, scores: FloatArray) -> None:
        self.add_bins(group, bin_index(scores))

    def add_bins(self, group: str, bins: npt.NDArray[np.intp]) -> None:
        """Add scores already binned (:func:`bin_index`)."""
        if bins.size == 0:
            return
        counts = self.groups.get(group)
        if counts is None:
            counts = self.groups[group] = np.zeros(N_BINS, dtype=np.int64)
        np.add.at(counts, bins, 1)

    def add_counts(self, group: str, counts: IntArray) -> None:
        if group in self.groups:
            self.groups[group] = self.groups[group] + counts
        else:
            self.groups[group] = counts.copy()

    def get(self, group: str) -> IntArray:
        """Counts of a group (zeros when the group never received a score)."""
        found = self.groups.get(group)
        return found if found is not None else np.zeros(N_BINS, dtype=np.int64)

    def total(self, group: str) -> int:
        found = self.groups.get(group)
        return int(found.sum()) if found is not None else 0

    def sum_of(self, groups: Iterable[str]) -> IntArray:
        out = np.zeros(N_BINS, dtype=np.int64)
        for g in groups:
            if g in self.groups:
                out += self.groups[g]
        return out

    def merge(self, other: ScoreBins) -> ScoreBins:
        out = ScoreBins()
        for g in sorted(set(self.groups) | set(other.groups)):
            out.groups[g] = self.get(g) + other.get(g)
        return out

    # -- serialisation: group names in the meta, sparse (bin, count) arrays in the blob ------
    def dump(self, prefix: str, arrays: dict[str, np.ndarray]) -> list[str]:
        names = sorted(self.groups)
        for i, g in enumerate(names):
            counts = self.groups[g]
            nz = np.flatnonzero(counts)
            arrays[f"{prefix}:{i}:i"] = nz.astype(np.uint16)
            arrays[f"{prefix}:{i}:c"] = counts[nz].astype(np.int64)
        return names

    @classmethod
    def load(cls, names: Any, prefix: str, arrays: Mapping[str, np.ndarray]) -> ScoreBins:
        out = cls()
        for i, g in enumerate(names or []):
            counts = np.zeros(N_BINS, dtype=np.int64)
            counts[arrays[f"{prefix}:{i}:i"].astype(np.intp)] = arrays[f"{prefix}:{i}:c"]
            out.groups[str(g)] = counts
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScoreBins):
            return NotImplemented
        keys = set(self.groups) | set(other.groups)
        return all(np.array_equal(self.get(g), other.get(g)) for g in keys)

    __hash__ = None  # type: ignore[assignment]


def add_scores(
    bins: ScoreBins,
    task: str,
    probs: Sequence[float | None],
    decided: Sequence[bool | None],
    keys: Sequence[str | None],
    score_maps: Sequence[Mapping[Any, Any] | None],
    labels: Sequence[str | None] | None = None,
    positive: str = "1",
) -> None:
    """Add a batch of read predictions (:func:`stream.metrics.batch.read_predictions`) to ``bins``.

    Binary: rows with a probability and a decision, in group ``"+"`` or ``"-"``. Multiclass:
    for each class ``c`` in a row's scores, the score of ``c`` in group ``"c\x1f+"`` when the
    row is predicted ``c``, else ``"c\x1f-"``. With ``labels`` (class keys per row), each
    group gets the label's side appended: ``"\x1f1"`` when the label is the positive class
    (binary) or ``c`` (multiclass), else ``"\x1f0"``.
    """
    grouped: dict[str, list[float]] = {}
    sep = "\x1f"
    if task == "binary":
        for i, (p, d) in enumerate(zip(probs, decided, strict=True)):
            if p is None or d is None:
                continue
            g = "+" if d else "-"
            if labels is not None:
                g += sep + ("1" if labels[i] == positive else "0")
            grouped.setdefault(g, []).append(p)
    elif task == "multiclass":
        for i, (key, sc) in enumerate(zip(keys, score_maps, strict=True)):
            if key is None or sc is None:
                continue
            for k, v in sc.items():
                c, p = class_key(k), as_probability(v)
                if c is None or p is None:
                    continue
                g = c + sep + ("+" if c == key else "-")
                if labels is not None:
                    g += sep + ("1" if labels[i] == c else "0")
                grouped.setdefault(g, []).append(p)
    for g, values in grouped.items():
        bins.add(g, np.array(values, dtype=np.float64))


def add_binary_scores(bins: ScoreBins, binned: npt.NDArray[np.intp], has: npt.NDArray[np.bool_],
                      d: npt.NDArray[np.bool_], y: npt.NDArray[np.bool_] | None = None) -> None:
    """:func:`add_scores` of a binary model's rows as arrays: the probabilities' bins
    ``binned`` (:func:`bin_index`), the rows that have both a probability and a decision
    ``has``, decisions ``d``, labels ``y`` (True: the positive class). Same groups and
    counts, without a loop over rows."""
    if not has.any():
        return
    sep = "\x1f"
    for side, mask in (("+", has & d), ("-", has & ~d)):
        if y is None:
            bins.add_bins(side, binned[mask])
        else:
            bins.add_bins(side + sep + "1", binned[mask & y])
            bins.add_bins(side + sep + "0", binned[mask & ~y])


__all__ = ["BIN_HIGH", "BIN_LOW", "BIN_SCORES", "N_BINS", "ScoreBins", "add_binary_scores",
           "add_scores", "bin_index"]
