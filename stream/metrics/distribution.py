"""A window's distribution of each feature on the reference's bins (``distribution`` rows).

What a reader needs to see *how* a feature moved, next to the verdict that says *that* it
moved. The store keeps the window statistics and verdicts only, so stage 2 writes, for the
whole traffic (segment ``all``) of a window with a reference, each reference feature's
shares on bins fixed by the reference, in ``window_metrics`` (family ``distribution``, no
new table: the rows travel, revise and compare like every other metric row):

- numeric: the reference's deciles cut the line into at most 10 bins (repeated edges, from
  ties, merged); rows ``bin_NN`` (the window's share), ``reference_bin_NN`` (the reference's
  share, 0.1 unless ties) and ``edge_NN`` (upper edge of bin NN; the last bin is open). The
  window's shares come from its uniform row sample (``metrics.sample_capacity`` rows), as
  the numeric drift tests do;
- categorical: the reference's :data:`TOP_CATEGORIES` heaviest categories and one bin for the
  rest; rows ``category:<value>`` and ``reference_category:<value>`` (``(other)`` for the
  rest), from the exact category counts.

Shares are over the column's non-null values (``null_share`` is its own row); a column with no
values in the window has no rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

import numpy as np
from numpy.typing import NDArray

from stream.metrics.reference import ReferenceProfile

#: Numeric bins: the reference's deciles.
BINS: Final = 10
#: Categorical bins: the reference's heaviest categories, then the rest.
TOP_CATEGORIES: Final = 10
OTHER: Final = "(other)"


def decile_edges(reference: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inner edges of the reference's decile bins, repeated edges merged.

    Examples
    --------
    >>> decile_edges(np.arange(1.0, 101.0)).round(6).tolist()[:3]
    [10.9, 20.8, 30.7]
    >>> decile_edges(np.array([0.0] * 95 + [1.0] * 5)).tolist()  # 9 equal edges: 2 bins
    [0.0]
    """
    return np.unique(np.quantile(reference, np.linspace(0.1, 0.9, BINS - 1)))


def bin_shares(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of ``values`` in each bin ``(-inf, e1), [e1, e2), ..., [ek, inf)``.

    Examples
    --------
    >>> bin_shares(np.array([0.0, 1.0, 1.0, 5.0]), np.array([1.0, 2.0])).tolist()
    [0.25, 0.5, 0.25]
    """
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(int(values.size), 1)


def category_shares(counts: Mapping[str, int], keep: list[str]) -> dict[str, float]:
    """Share of each of the ``keep`` categories, and of the rest under :data:`OTHER`.

    Examples
    --------
    >>> category_shares({"a": 2, "b": 1, "c": 1}, ["a", "b"])
    {'a': 0.5, 'b': 0.25, '(other)': 0.25}
    """
    total = sum(counts.values())
    shares = {k: counts.get(k, 0) / total if total else 0.0 for k in keep}
    shares[OTHER] = 1.0 - sum(shares.values()) if total else 0.0
    return shares


def distribution_rows(
    reference: ReferenceProfile,
    numeric: Mapping[str, NDArray[np.float64]],
    categorical: Mapping[str, Mapping[str, int]],
) -> Iterator[tuple[str, str, float, int]]:
    """``(feature, metric, value, window values)`` rows for every reference feature the
    window has values of (``numeric``: the sampled values; ``categorical``: the counts)."""
    for name, ref in sorted(reference.columns.items()):
        if ref.kind == "numeric":
            current = numeric.get(name)
            if current is None or not current.size or not ref.sample.size:
                continue
            edges = decile_edges(ref.sample)
            window, refs = bin_shares(current, edges), bin_shares(ref.sample, edges)
            size = int(current.size)
            for i in range(edges.size + 1):
                yield name, f"bin_{i + 1:02d}", float(window[i]), size
                yield name, f"reference_bin_{i + 1:02d}", float(refs[i]), size
                if i < edges.size:
                    yield name, f"edge_{i + 1:02d}", float(edges[i]), size
        else:
            counts = categorical.get(name)
            if not counts or not ref.counts:
                continue
            keep = sorted(ref.counts, key=lambda k: (-ref.counts[k], k))[:TOP_CATEGORIES]
            window_shares = category_shares(counts, keep)
            ref_shares = category_shares(ref.counts, keep)
            size = sum(counts.values())
            for category in [*keep, OTHER]:
                yield name, f"category:{category}", window_shares[category], size
                yield name, f"reference_category:{category}", ref_shares[category], size
