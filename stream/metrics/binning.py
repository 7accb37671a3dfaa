"""A column as the drift tests see it, and Evidently's way of turning it into shares.

Two shapes of column reach a drift test:

- :class:`NumericPair`: the finite values of a numerical column in the reference and in the
  current window (nulls and infinities already dropped, see :func:`clean_numeric`);
- :class:`CategoricalPair`: counts per category in both, aligned on the sorted union of the
  categories seen on either side.

:func:`binned_shares` reproduces Evidently's ``get_binned_data``
(``legacy/calculations/stattests/utils.py``), the binning behind PSI, KL and Jensen-Shannon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from stream.errors import MetricsError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: A numerical column is binned on a histogram only above this many distinct reference values;
#: at or below it, each distinct value is its own category (Evidently: ``n_vals > 20``).
MAX_VALUES_AS_CATEGORIES: Final = 20

#: Above this magnitude, numeric samples are divided by a power of two (an exact operation) so
#: that squares, ranges and histogram widths cannot overflow; see :class:`NumericPair`.
_RESCALE_ABOVE: Final = 2.0**500


@dataclass(frozen=True, slots=True)
class NumericPair:
    """Finite values of one numerical column, reference and current.

    ``reference`` and ``current`` hold the values divided by ``2 ** log2_scale``. The scale is
    0 (values untouched) unless the largest magnitude exceeds ``2 ** 500``; then the values are
    brought below 1 in magnitude, which is exact in binary floating point, so scale-free
    statistics (ranks, p-values, binned shares, the normed Wasserstein distance) are the same
    as on the raw values, without the overflow that ``np.std`` or a histogram range would hit
    on values near 1e300. Tests whose statistic has a unit scale it back.
    """

    reference: FloatArray
    current: FloatArray
    log2_scale: int = 0

    @classmethod
    def of(cls, reference: FloatArray, current: FloatArray) -> NumericPair:
        """Pair already-clean values, rescaling them when they are huge."""
        biggest = max(
            float(np.max(np.abs(reference), initial=0.0)),
            float(np.max(np.abs(current), initial=0.0)),
        )
        if biggest <= _RESCALE_ABOVE:
            return cls(reference, current, 0)
        exponent = math.frexp(biggest)[1]
        exponent += exponent % 2  # even, so that square-root units scale back exactly
        return cls(np.ldexp(reference, -exponent), np.ldexp(current, -exponent), exponent)

    @property
    def reference_size(self) -> int:
        return int(self.reference.size)

    @property
    def current_size(self) -> int:
        return int(self.current.size)

    def n_unique(self) -> int:
        """Distinct values over reference and current together."""
        return int(np.unique(np.concatenate([self.reference, self.current])).size)

    def codes(self) -> tuple[IntArray, IntArray, int]:
        """Each value's index among the sorted distinct values: reference, current, count."""
        values, inverse = np.unique(
            np.concatenate([self.reference, self.current]), return_inverse=True
        )
        codes = inverse.astype(np.int64).ravel()
        return codes[: self.reference.size], codes[self.reference.size :], int(values.size)


@dataclass(frozen=True, slots=True)
class CategoricalPair:
    """Counts per category, reference and current, aligned on ``labels`` (sorted).

    Every label has a positive count on at least one side.
    """

    labels: tuple[str, ...]
    reference: IntArray
    current: IntArray

    @classmethod
    def of(cls, reference: Mapping[str, int], current: Mapping[str, int]) -> CategoricalPair:
        """Align two ``{category: count}`` mappings; zero counts are allowed and dropped."""
        ref = _checked_counts(reference, "reference")
        cur = _checked_counts(current, "current")
        labels = tuple(
            sorted({k for k, v in ref.items() if v > 0} | {k for k, v in cur.items() if v > 0})
        )
        return cls(
            labels,
            np.array([ref.get(label, 0) for label in labels], dtype=np.int64),
            np.array([cur.get(label, 0) for label in labels], dtype=np.int64),
        )

    @property
    def reference_size(self) -> int:
        return int(self.reference.sum())

    @property
    def current_size(self) -> int:
        return int(self.current.sum())

    def n_unique(self) -> int:
        """Distinct categories over reference and current together."""
        return len(self.labels)


Pair = NumericPair | CategoricalPair


def clean_numeric(values: object, side: str) -> FloatArray:
    """The finite values of a one-dimensional numeric array, as float64.

    Nulls (``None``, NaN) and infinities are dropped, as Evidently does before any drift test
    (``data_drift.get_one_column_drift`` replaces +/-inf by NaN, then drops NaN).
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricsError(f"{side}: a numerical column must hold numbers ({exc})") from exc
    if array.ndim != 1:
        raise MetricsError(f"{side}: expected a one-dimensional array, got shape {array.shape}")
    return array[np.isfinite(array)]


def _checked_counts(counts: Mapping[str, int], side: str) -> dict[str, int]:
    checked: dict[str, int] = {}
    for label, count in counts.items():
        if not isinstance(label, str):
            raise MetricsError(f"{side}: category labels must be strings, got {label!r}")
        try:
            whole = int(count)
        except (TypeError, ValueError, OverflowError):
            whole = -1
        if isinstance(count, bool) or whole != count or whole < 0:
            raise MetricsError(f"{side}: count of {label!r} must be a whole number >= 0")
        checked[label] = whole
    return checked


def category_counts(pair: Pair) -> tuple[IntArray, IntArray]:
    """Counts per distinct value (numeric) or category, aligned and sorted, both sides."""
    if isinstance(pair, CategoricalPair):
        return pair.reference, pair.current
    ref_codes, cur_codes, n_values = pair.codes()
    return (
        np.bincount(ref_codes, minlength=n_values).astype(np.int64),
        np.bincount(cur_codes, minlength=n_values).astype(np.int64),
    )


def histogram_edges(values: FloatArray) -> FloatArray | None:
    """``np.histogram_bin_edges(values, bins="sturges")``, or None when numpy cannot build them.

    numpy refuses when the bin width falls below the spacing of floats at the data's magnitude
    (e.g. a constant column at 1e17); callers then use the distinct values as categories.
    """
    try:
        edges: FloatArray = np.histogram_bin_edges(values, bins="sturges")
    except ValueError:
        return None
    return edges


def fill_empty(shares: FloatArray) -> FloatArray:
    """Replace empty bins by a small share, as Evidently does for PSI and KL.

    The replacement is ``min(non-zero share) / 1e6`` when that minimum is at most 1e-4, and
    1e-4 otherwise.
    """
    filled = shares.copy()
    smallest = float(np.min(filled[filled != 0]))
    np.place(filled, filled == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return filled


def binned_shares(pair: Pair, *, fill_zeros: bool) -> tuple[FloatArray, FloatArray]:
    """Share of reference and current in each bin (numeric) or category, as Evidently bins.

    Parameters
    ----------
    pair
        The column. A :class:`NumericPair` with more than 20 distinct reference values is cut
        on ``np.histogram_bin_edges`` with ``bins="sturges"`` over reference and current
        together; any other column uses its distinct values (categories) as bins.
    fill_zeros
        Replace empty bins as :func:`fill_empty` does (PSI, KL); Jensen-Shannon does not.

    Returns
    -------
    tuple of numpy.ndarray
        Reference shares and current shares, aligned.

    References
    ----------
    Evidently, ``legacy/calculations/stattests/utils.py``, ``get_binned_data``.

    Examples
    --------
    >>> import numpy as np
    >>> pair = CategoricalPair.of({"a": 3, "b": 1}, {"a": 2, "c": 2})
    >>> ref, cur = binned_shares(pair, fill_zeros=False)
    >>> ref.tolist(), cur.tolist()
    ([0.75, 0.25, 0.0], [0.5, 0.0, 0.5])
    >>> binned_shares(pair, fill_zeros=True)[0].tolist()
    [0.75, 0.25, 0.0001]
    """
    ref_shares: FloatArray
    cur_shares: FloatArray
    edges = None
    if isinstance(pair, NumericPair) and np.unique(pair.reference).size > MAX_VALUES_AS_CATEGORIES:
        edges = histogram_edges(np.concatenate([pair.reference, pair.current]))
    if isinstance(pair, NumericPair) and edges is not None:
        ref_shares = np.histogram(pair.reference, edges)[0] / pair.reference_size
        cur_shares = np.histogram(pair.current, edges)[0] / pair.current_size
    else:
        ref_counts, cur_counts = category_counts(pair)
        ref_shares = ref_counts / pair.reference_size
        cur_shares = cur_counts / pair.current_size
    if fill_zeros:
        return fill_empty(ref_shares), fill_empty(cur_shares)
    return ref_shares, cur_shares
