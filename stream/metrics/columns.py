"""A column's values: a batch split by value type, and the kind its majority makes it.

Stage 1 reads each feature of a batch once into a :class:`ColumnBatch` (one numpy conversion
per column, not one per value); the reference and the quality figures read a column's
:func:`column_kind` from what its :class:`~stream.metrics.accumulators.ColumnStats` counted.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np

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


class ColumnBatch:
    """One column of a batch, split by value type (see :class:`ColumnStats`)."""

    __slots__ = ("categories", "n_nonfinite", "n_other", "numeric")

    def __init__(self, values: Sequence[Any]) -> None:
        self.numeric: FloatArray | None = None  # one entry per row, NaN where not numeric
        self.n_nonfinite = 0
        self.n_other = 0
        self.categories: dict[str, int] = {}
        types = set(map(type, values))
        if types <= _NUMERIC_TYPES:
            try:
                self._numeric(np.array(values, dtype=np.float64))
                return
            except OverflowError:
                pass
        if types <= _TEXT_TYPES:
            counts = Counter(values)
            counts.pop(None, None)
            self.categories = dict(counts)
            return
        self._slow(values)

    def _numeric(self, arr: FloatArray) -> None:
        finite = np.isfinite(arr)
        if not finite.all():
            self.n_nonfinite = int(np.isinf(arr).sum())
            arr[~finite] = np.nan
        self.numeric = arr if finite.any() else None

    def _slow(self, values: Sequence[Any]) -> None:
        arr = np.full(len(values), np.nan)
        cats: Counter[str] = Counter()
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool):
                cats["true" if v else "false"] += 1
            elif isinstance(v, int | float):
                try:
                    x = float(v)
                except OverflowError:
                    x = math.inf if v > 0 else -math.inf
                if math.isfinite(x):
                    arr[i] = x
                elif not math.isnan(x):
                    self.n_nonfinite += 1
            elif isinstance(v, str):
                cats[str(v)] += 1
            else:
                self.n_other += 1
        self.categories = dict(cats)
        self.numeric = arr if not np.isnan(arr).all() else None

    def finite_values(self) -> FloatArray | None:
        if self.numeric is None:
            return None
        return self.numeric[~np.isnan(self.numeric)]


def transpose(feats: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[Sequence[Any]]:
    """Transpose a batch of feature dicts into one value list per name (None when missing).

    One ``itemgetter`` call per event when every event has every name (the common case),
    instead of one ``dict.get`` per event and name.
    """
    if not names:
        return []
    try:
        rows = list(map(operator.itemgetter(*names), feats))
    except KeyError:
        return [[f.get(name) for f in feats] for name in names]
    if len(names) == 1:
        return [rows]
    return list(zip(*rows, strict=True))
