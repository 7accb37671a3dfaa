"""A column's values: a batch split by value type, and the kind its majority makes it.

Stage 1 reads each feature of a batch once into a :class:`ColumnBatch` (one numpy conversion
per column, not one per value); the reference and the quality figures read a column's
:func:`column_kind` from what its :class:`~stream.metrics.accumulators.ColumnStats` counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from stream.metrics.accumulators import ColumnStats
from stream.metrics.sampling import FloatArray

Kind = Literal["numeric", "categorical"]

_NONE_TYPE: Final = type(None)
_NUMERIC_TYPES: Final = frozenset({int, float, _NONE_TYPE})
_TEXT_TYPES: Final = frozenset({str, _NONE_TYPE})


def column_kind(stats: ColumnStats) -> Kind:
    """Majority type of a column's non-null values (ties and empty columns: numeric)."""
    numeric = stats.n_numeric + stats.n_nonfinite
    return "categorical" if stats.n_category > numeric else "numeric"


IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Rows = IntArray | None  # positions in a batch; None: every row


class ColumnBatch:
    """One column of a batch, split by value type per row (see :class:`ColumnStats`).

    Read once per batch; each segment's state then takes its rows (:meth:`take`) with
    numpy indexing, instead of reading the events again per segment.
    """

    __slots__ = ("codes", "names", "nonfinite", "numeric", "other")

    def __init__(self, values: Sequence[Any]) -> None:
        self.numeric: FloatArray | None = None  # per row, NaN where not a finite number
        self.nonfinite: BoolArray | None = None  # per row: +inf or -inf (None: no row)
        self.codes: IntArray | None = None  # per row: index in ``names``, -1: not a category
        self.names: list[str] = []
        self.other: BoolArray | None = None  # per row: a list, dict, ... (None: no row)
        types = set(map(type, values))
        if types <= _NUMERIC_TYPES:
            try:
                self._numeric(np.array(values, dtype=np.float64))
                return
            except OverflowError:
                pass
        if types <= _TEXT_TYPES:
            index: dict[str, int] = {}
            codes = [-1 if v is None else index.setdefault(v, len(index)) for v in values]
            if index:
                self.codes = np.array(codes, dtype=np.intp)
                self.names = list(index)
            return
        self._slow(values)

    def _numeric(self, arr: FloatArray) -> None:
        finite = np.isfinite(arr)
        if not finite.all():
            inf = np.isinf(arr)
            if inf.any():
                self.nonfinite = inf
            arr[~finite] = np.nan
        self.numeric = arr if finite.any() else None

    def _slow(self, values: Sequence[Any]) -> None:
        n = len(values)
        arr = np.full(n, np.nan)
        nonfinite = np.zeros(n, dtype=bool)
        other = np.zeros(n, dtype=bool)
        index: dict[str, int] = {}
        codes = np.full(n, -1, dtype=np.intp)
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool):
                codes[i] = index.setdefault("true" if v else "false", len(index))
            elif isinstance(v, int | float):
                try:
                    x = float(v)
                except OverflowError:
                    x = math.inf if v > 0 else -math.inf
                if math.isfinite(x):
                    arr[i] = x
                elif not math.isnan(x):
                    nonfinite[i] = True
            elif isinstance(v, str):
                codes[i] = index.setdefault(str(v), len(index))
            else:
                other[i] = True
        if index:
            self.codes, self.names = codes, list(index)
        self.nonfinite = nonfinite if nonfinite.any() else None
        self.other = other if other.any() else None
        self.numeric = arr if not np.isnan(arr).all() else None

    def numeric_rows(self, rows: Rows = None) -> tuple[FloatArray | None, FloatArray | None]:
        """The rows' numeric values (NaN where none; None when no row has one), and the
        finite ones among them (None: no numeric column); each row taken and tested for
        NaN once."""
        taken = self.numeric
        if taken is None:
            return None, None
        if rows is not None:
            taken = taken[rows]
        nan = np.isnan(taken)
        if not nan.any():
            return taken, taken
        finite = taken[~nan]
        return (taken if finite.size else None), finite

    def take(self, rows: Rows = None) -> tuple[
            FloatArray | None, tuple[FloatArray | None, int, dict[str, int], int]]:
        """The rows' numeric values (NaN where none; None when no row has one) and what
        :meth:`ColumnStats.add` takes of them: finite values, count of infinities, counts
        per category, count of other values. The rows are taken and tested for NaN once (a
        window state needs both per column and segment, and at a few rows each numpy call
        costs more than its work)."""
        taken, finite = self.numeric_rows(rows)
        return taken, (finite, _count(self.nonfinite, rows), self.categories(rows),
                       _count(self.other, rows))

    def categories(self, rows: Rows = None) -> dict[str, int]:
        if self.codes is None:
            return {}
        codes = self.codes if rows is None else self.codes[rows]
        counts = np.bincount(codes[codes >= 0], minlength=len(self.names))
        return {self.names[i]: int(counts[i]) for i in np.flatnonzero(counts)}


def _count(mask: BoolArray | None, rows: Rows) -> int:
    if mask is None:
        return 0
    return int(mask.sum() if rows is None else mask[rows].sum())
