"""Small mergeable accumulators: exact sums, capped category counts, column and label stats.

Each one has ``add_*`` (a batch, as numpy arrays), ``merge`` (returns a new object; the
result equals one pass over both inputs), ``to_json``/``from_json`` (JSON-safe, bounded
size) and ``__eq__``. Float sums use :class:`ExactSum`, so merged sums are bit-identical
to one-pass sums whatever the split or order (plain float addition is not associative).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

import numpy as np

from stream.metrics.sampling import FloatArray

OTHER_CATEGORY: Final = "__other__"

_SCALE_BITS: Final = 1126  # 2**-1126 is the value of one unit: below the smallest subnormal
_SPLIT: Final = 27
_CHUNK: Final = 1 << 24
#: Below this many values a Python loop over ``float.as_integer_ratio`` beats the numpy
#: path's fixed cost (~22 us: frexp, two bincounts): 1.8 against 21.6 us for 5 values; the
#: two cross at ~75. Windows thin at low traffic are summed per segment, a few values each.
_SMALL: Final = 64


class ExactSum:
    """Exact, order-independent sum of float64 values.

    Each finite value ``m * 2**(e - 53)`` (``np.frexp``) is added as the integer
    ``m << (e + 1073)`` to one Python integer; :meth:`value` rounds the exact total once
    (CPython's int / int true division is correctly rounded). NaN and infinities are
    counted apart and give NaN/inf like ordinary summation would.

    Examples
    --------
    >>> s = ExactSum(); s.add(np.array([1e16, 1.0, -1e16]))
    >>> s.value()
    1.0
    """

    __slots__ = ("nan", "neg_inf", "pos_inf", "total")

    def __init__(self) -> None:
        self.total = 0
        self.pos_inf = 0
        self.neg_inf = 0
        self.nan = 0

    def add(self, values: FloatArray) -> None:
        x = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(x)
        if not finite.all():
            bad = x[~finite]
            self.nan += int(np.isnan(bad).sum())
            self.pos_inf += int((bad == np.inf).sum())
            self.neg_inf += int((bad == -np.inf).sum())
            x = x[finite]
        for start in range(0, x.size, _CHUNK):
            self._add_finite(x[start : start + _CHUNK])

    def _add_finite(self, x: FloatArray) -> None:
        if x.size < _SMALL:
            # v == p / q, q a power of two (at most 2**1074): p << (1126 - log2 q) exactly.
            total = self.total
            for v in x.tolist():
                p, q = v.as_integer_ratio()
                total += p << (_SCALE_BITS + 1 - q.bit_length())
            self.total = total
            return
        mant, expo = np.frexp(x)
        m = np.abs(mant * float(1 << 53)).astype(np.int64)
        sign = np.where(mant < 0, -1.0, 1.0)
        idx = (expo + 1073).astype(np.intp)
        hi = np.bincount(idx, weights=sign * (m >> _SPLIT).astype(np.float64))
        lo = np.bincount(idx, weights=sign * (m & ((1 << _SPLIT) - 1)).astype(np.float64))
        total = self.total
        for i in np.flatnonzero((hi != 0) | (lo != 0)).tolist():
            total += ((int(hi[i]) << _SPLIT) + int(lo[i])) << i
        self.total = total

    def value(self) -> float:
        if self.nan or (self.pos_inf and self.neg_inf):
            return math.nan
        if self.pos_inf:
            return math.inf
        if self.neg_inf:
            return -math.inf
        try:
            return self.total / (1 << _SCALE_BITS)
        except OverflowError:
            return math.inf if self.total > 0 else -math.inf

    def fraction(self) -> Fraction | None:
        """The exact sum as a fraction (None when a NaN or an infinity was added)."""
        if self.nan or self.pos_inf or self.neg_inf:
            return None
        return Fraction(self.total, 1 << _SCALE_BITS)

    def merge(self, other: ExactSum) -> ExactSum:
        out = ExactSum()
        out.total = self.total + other.total
        out.pos_inf = self.pos_inf + other.pos_inf
        out.neg_inf = self.neg_inf + other.neg_inf
        out.nan = self.nan + other.nan
        return out

    def to_json(self) -> list[Any]:
        return [hex(self.total), self.pos_inf, self.neg_inf, self.nan]

    @classmethod
    def from_json(cls, data: list[Any]) -> ExactSum:
        out = cls()
        out.total = int(data[0], 16)
        out.pos_inf, out.neg_inf, out.nan = int(data[1]), int(data[2]), int(data[3])
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactSum):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


def two_product_square(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``x*x == hi + lo`` exactly (Dekker/Veltkamp split), so sums of squares can be exact.

    Exact unless ``x*x`` overflows (``|x| > ~1e154``, ``hi`` is then inf) or its low part
    underflows (``|x| < ~1e-146``, a relative error below 1e-292 then remains).
    """
    hi = x * x
    c = 134217729.0 * x  # 2**27 + 1
    xh = c - (c - x)
    xl = x - xh
    with np.errstate(invalid="ignore", over="ignore"):
        lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl
    lo = np.where(np.isfinite(hi), lo, 0.0)
    return hi, lo


class CategoryCounts:
    """Counts per category, at most ``cap`` categories plus ``__other__``.

    Exact while the number of distinct categories stays ``<= cap``. Past it, the ``cap``
    heaviest categories are kept (ties by name) and the rest are folded into ``__other__``
    (the total is always exact). The fold happens after each batch and each merge, so past
    the cap the kept set may depend on the batching; below it, merge equals one pass.
    """

    __slots__ = ("cap", "counts")

    def __init__(self, cap: int, counts: Mapping[str, int] | None = None) -> None:
        self.cap = int(cap)
        self.counts: dict[str, int] = dict(counts or {})

    def add(self, counter: Mapping[str, int]) -> None:
        c = self.counts
        for k, v in counter.items():
            c[k] = c.get(k, 0) + int(v)
        if len(c) > self.cap:  # else at most cap real categories: nothing to fold
            self._fold()

    def _fold(self) -> None:
        real = [k for k in self.counts if k != OTHER_CATEGORY]
        if len(real) <= self.cap:
            return
        ranked = sorted(real, key=lambda k: (-self.counts[k], k))
        folded = sum(self.counts[k] for k in ranked[self.cap :])
        kept = {k: self.counts[k] for k in ranked[: self.cap]}
        kept[OTHER_CATEGORY] = self.counts.get(OTHER_CATEGORY, 0) + folded
        self.counts = kept

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def folded(self) -> int:
        return self.counts.get(OTHER_CATEGORY, 0)

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        out = CategoryCounts(min(self.cap, other.cap), self.counts)
        out.add(other.counts)
        return out

    def to_json(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoryCounts):
            return NotImplemented
        return self.cap == other.cap and self.counts == other.counts

    __hash__ = None  # type: ignore[assignment]


@dataclass(eq=True, slots=True)
class ColumnStats:
    """What one column (a feature, or ``__prediction__``) received, by value type.

    Nulls are not counted here: ``nulls = rows - n_numeric - n_nonfinite - n_category -
    n_other`` where rows is the window's prediction count (a missing key is a null; a float
    NaN is a null too, since JSON cannot carry one).
    """

    cap: int
    n_numeric: int = 0  # finite int/float (bools are categories)
    n_nonfinite: int = 0  # +inf / -inf
    n_category: int = 0  # str or bool
    n_other: int = 0  # list, dict, ...
    min: float | None = None
    max: float | None = None
    categories: CategoryCounts = field(default_factory=lambda: CategoryCounts(0))

    def __post_init__(self) -> None:
        if self.categories.cap != self.cap:
            self.categories = CategoryCounts(self.cap, self.categories.counts)

    @property
    def non_null(self) -> int:
        return self.n_numeric + self.n_nonfinite + self.n_category + self.n_other

    def add(
        self,
        numeric: FloatArray | None,
        n_nonfinite: int,
        categories: Mapping[str, int],
        n_other: int,
    ) -> None:
        if numeric is not None and numeric.size:
            self.n_numeric += int(numeric.size)
            # + 0.0 turns -0.0 into 0.0: min/max of the two zeros depends on the order seen,
            # and merged states must equal the one-pass state to the byte.
            lo, hi = float(numeric.min()) + 0.0, float(numeric.max()) + 0.0
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
        self.n_nonfinite += n_nonfinite
        self.n_other += n_other
        if categories:
            self.n_category += sum(categories.values())
            self.categories.add(categories)

    def merge(self, other: ColumnStats) -> ColumnStats:
        return ColumnStats(
            cap=min(self.cap, other.cap),
            n_numeric=self.n_numeric + other.n_numeric,
            n_nonfinite=self.n_nonfinite + other.n_nonfinite,
            n_category=self.n_category + other.n_category,
            n_other=self.n_other + other.n_other,
            min=_opt(min, self.min, other.min),
            max=_opt(max, self.max, other.max),
            categories=self.categories.merge(other.categories),
        )

    def to_json(self) -> list[Any]:
        return [
            self.cap,
            self.n_numeric,
            self.n_nonfinite,
            self.n_category,
            self.n_other,
            self.min,
            self.max,
            self.categories.to_json(),
        ]

    @classmethod
    def from_json(cls, d: list[Any]) -> ColumnStats:
        cap = int(d[0])
        return cls(
            cap, int(d[1]), int(d[2]), int(d[3]), int(d[4]), d[5], d[6], CategoryCounts(cap, d[7])
        )


def _opt(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(fn(a, b))


@dataclass(eq=True, slots=True)
class ScalarStats:
    """Count, exact sum, min and max of a numeric stream (latency)."""

    n: int = 0
    total: ExactSum = field(default_factory=ExactSum)
    min: float | None = None
    max: float | None = None

    def add(self, x: FloatArray) -> None:
        if x.size == 0:
            return
        self.n += int(x.size)
        self.total.add(x)
        lo, hi = float(x.min()) + 0.0, float(x.max()) + 0.0  # no -0.0 (see above)
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def mean(self) -> float | None:
        return self.total.value() / self.n if self.n else None

    def merge(self, other: ScalarStats) -> ScalarStats:
        return ScalarStats(
            self.n + other.n,
            self.total.merge(other.total),
            _opt(min, self.min, other.min),
            _opt(max, self.max, other.max),
        )

    def to_json(self) -> list[Any]:
        return [self.n, self.total.to_json(), self.min, self.max]

    @classmethod
    def from_json(cls, d: list[Any]) -> ScalarStats:
        return cls(int(d[0]), ExactSum.from_json(d[1]), d[2], d[3])


class SumSet:
    """A named set of :class:`ExactSum` and integer counts, merged field by field."""

    __slots__ = ("counts", "sums")

    def __init__(self, sums: Iterable[str], counts: Iterable[str]) -> None:
        self.sums: dict[str, ExactSum] = {k: ExactSum() for k in sums}
        self.counts: dict[str, int] = dict.fromkeys(counts, 0)

    def value(self, name: str) -> float:
        return self.sums[name].value()

    def merge(self, other: SumSet) -> SumSet:
        out = SumSet((), ())
        out.sums = {k: v.merge(other.sums[k]) for k, v in self.sums.items()}
        out.counts = {k: v + other.counts[k] for k, v in self.counts.items()}
        return out

    def to_json(self) -> dict[str, Any]:
        return {"s": {k: v.to_json() for k, v in self.sums.items()}, "c": self.counts}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SumSet:
        out = cls((), ())
        out.sums = {k: ExactSum.from_json(v) for k, v in d["s"].items()}
        out.counts = {k: int(v) for k, v in d["c"].items()}
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SumSet):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


def merge_counters(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = Counter(a)
    out.update(b)
    return dict(out)
