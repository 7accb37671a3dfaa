"""Data-quality figures of a window, read from its state at evaluation time.

Choice made: the window state does not depend on the reference (stage 1 never needs it), so
out-of-range and unseen-category shares are computed at evaluation from what the state
holds:

- ``null_share``: exact; missing key, ``null`` and float NaN are nulls; over all rows;
- ``type_error_share``: exact; values whose type differs from the column's kind (a string or
  bool in a numeric column, a number in a categorical one, +-inf, lists/objects); over all
  rows. The kind is the reference's; without a reference, the majority type in the window;
- ``out_of_range_share`` (numeric, needs a reference): share of the column's finite values
  outside ``[reference min, reference max]``; exact while the window has at most
  ``sample_capacity`` rows, otherwise estimated on the uniform row sample (standard error
  ``sqrt(s (1 - s) / m) <= 0.5 / sqrt(m)`` for ``m`` sampled values);
- ``unseen_category_share`` (categorical, needs a reference): share of the column's
  category values not in the reference's category set; exact while the column has at most
  ``category_cap`` distinct values in the window. Values folded into ``__other__`` count as
  unseen (conservative: it can only overstate the share, by at most the ``__other__`` count).
"""

from __future__ import annotations

import numpy as np

from stream.metrics.accumulators import OTHER_CATEGORY, ColumnStats
from stream.metrics.columns import Kind, column_kind
from stream.metrics.reference import ReferenceProfile
from stream.metrics.window import WindowState


def type_errors(stats: ColumnStats, kind: Kind) -> int:
    if kind == "numeric":
        return stats.n_category + stats.n_other + stats.n_nonfinite
    return stats.n_numeric + stats.n_nonfinite + stats.n_other


def quality_metrics(
    state: WindowState, reference: ReferenceProfile | None, columns: list[str]
) -> list[tuple[str, str, float | None]]:
    """``(metric, feature, value)`` for every column in ``columns`` (state or reference)."""
    rows = state.n_predictions
    out: list[tuple[str, str, float | None]] = []
    for name in columns:
        stats = state.columns.get(name) or ColumnStats(state.category_cap)
        ref = reference.columns.get(name) if reference is not None else None
        kind: Kind = ref.kind if ref is not None else column_kind(stats)
        share = (lambda k: k / rows) if rows else (lambda k: None)
        out.append(("null_share", name, share(rows - stats.non_null)))
        out.append(("type_error_share", name, share(type_errors(stats, kind))))
        if ref is None:
            continue
        if kind == "numeric":
            values = state.sample.column(name)
            if values.size and ref.min is not None and ref.max is not None:
                outside = int(((values < ref.min) | (values > ref.max)).sum())
                out.append(("out_of_range_share", name, outside / values.size))
            else:
                out.append(("out_of_range_share", name, None))
        else:
            counts = stats.categories.counts
            total = sum(counts.values())
            known = ref.counts
            unseen = sum(v for k, v in counts.items() if k not in known or k == OTHER_CATEGORY)
            out.append(("unseen_category_share", name, unseen / total if total else None))
    return out


def latency_metrics(state: WindowState, latency_column: str) -> list[tuple[str, float | None]]:
    """p50/p90/p99 (sample: exact up to capacity), mean/min/max (exact) of ``latency_ms``."""
    lat = state.latency
    if lat.n == 0:
        return []
    values = state.sample.column(latency_column)
    p50, p90, p99 = (float(v) for v in np.percentile(values, [50, 90, 99]))
    return [
        ("latency_p50", p50),
        ("latency_p90", p90),
        ("latency_p99", p99),
        ("latency_mean", lat.mean()),
        ("latency_min", lat.min),
        ("latency_max", lat.max),
    ]
