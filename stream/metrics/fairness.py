"""Fairness between the groups of a protected attribute, from per-segment window states.

For the groups ``attribute=value`` of one window (the folded ``attribute=other`` bucket is
not a group and is left out; so are groups under ``min_group_size``):

- ``demographic_parity_difference`` = max - min over groups of the positive-prediction rate
  (share of predictions equal to ``positive_label``), 0 = parity;
- ``disparate_impact_ratio`` = min / max of the same rates (1 = parity; the "80 % rule"
  flags < 0.8); ``None`` when every rate is 0;
- ``equal_opportunity_difference`` = max - min over groups of the true-positive rate
  ``TP / (TP + FN)`` on labelled rows (groups with fewer than ``min_group_size`` labelled
  positives are left out).

Each needs at least two groups, otherwise ``None``.

References
----------
Feldman et al. (2015), "Certifying and removing disparate impact"; Hardt, Price & Srebro
(2016), "Equality of opportunity in supervised learning".
"""

from __future__ import annotations

from collections.abc import Mapping

from stream.metrics.segments import OTHER_VALUE, split_segment
from stream.metrics.window import WindowState
from stream.results import ALL_SEGMENT, MetricRow, WindowKey


def _tpr_counts(state: WindowState) -> tuple[int, int]:
    """(true positives, actual positives) for the positive label."""
    if state.task == "binary":
        c = state.binary.counts
        return c["tp"], c["tp"] + c["fn"]
    if state.task == "multiclass":
        pos = state.positive_label
        tp = actual = 0
        for cell, n in state.confusion.items():
            true, pred = cell.split("\x1f", 1)
            if true == pos:
                actual += n
                tp += n if pred == pos else 0
        return tp, actual
    return 0, 0


def fairness_metrics(
    states: Mapping[str, WindowState], attribute: str, *, min_group_size: int = 1
) -> dict[str, float | None]:
    """The three figures above for ``attribute`` from ``{segment: state}``."""
    rates: list[float] = []
    tprs: list[float] = []
    for seg, state in sorted(states.items()):
        parts = split_segment(seg)
        if parts is None or parts[0] != attribute or parts[1] == OTHER_VALUE:
            continue
        if state.task == "regression":
            continue
        n, pos = state.decisions.counts["n"], state.decisions.counts["positive"]
        if n >= min_group_size and n > 0:
            rates.append(pos / n)
        tp, actual = _tpr_counts(state)
        if actual >= min_group_size and actual > 0:
            tprs.append(tp / actual)
    out: dict[str, float | None] = dict.fromkeys(
        ("demographic_parity_difference", "disparate_impact_ratio", "equal_opportunity_difference")
    )
    if len(rates) >= 2:
        out["demographic_parity_difference"] = max(rates) - min(rates)
        out["disparate_impact_ratio"] = min(rates) / max(rates) if max(rates) > 0 else None
    if len(tprs) >= 2:
        out["equal_opportunity_difference"] = max(tprs) - min(tprs)
    return out


def fairness_rows(
    states: Mapping[str, WindowState],
    attribute: str,
    key: WindowKey,
    revision: int,
    computed_at: int,
    *,
    min_group_size: int = 1,
) -> list[MetricRow]:
    """Rows family "fairness", segment "all", feature = attribute (``key.segment`` ignored)."""
    groups = [
        s
        for seg, s in states.items()
        if (p := split_segment(seg)) is not None and p[0] == attribute and p[1] != OTHER_VALUE
    ]
    n = sum(s.n_predictions for s in groups)
    labelled = sum(s.n_labelled for s in groups)
    coverage = labelled / n if n else None
    return [
        MetricRow(
            key.model_id,
            key.model_version,
            ALL_SEGMENT,
            key.window_start,
            key.window_end,
            "fairness",
            metric,
            attribute,
            value,
            n,
            labelled,
            coverage,
            revision,
            computed_at,
        )
        for metric, value in fairness_metrics(
            states, attribute, min_group_size=min_group_size
        ).items()
    ]
