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

Each needs at least two groups, otherwise ``None``, with the reason in the row's ``reason``
(:data:`FEWER_THAN_TWO_GROUPS`, :data:`GROUPS_BELOW_MIN_SIZE`, ...).

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


#: Why a fairness figure is NULL (the row's ``reason``).
NOT_CLASSIFICATION = "not_classification"  # regression: no positive class
FEWER_THAN_TWO_GROUPS = "fewer_than_two_groups"  # under two groups seen in the window
GROUPS_BELOW_MIN_SIZE = "groups_below_min_size"  # groups seen, under two large enough
NO_POSITIVE_PREDICTIONS = "no_positive_predictions"  # impact ratio: every rate is 0

_METRICS = ("demographic_parity_difference", "disparate_impact_ratio",
            "equal_opportunity_difference")


def fairness_figures(
    states: Mapping[str, WindowState], attribute: str, *, min_group_size: int = 1
) -> dict[str, tuple[float | None, str]]:
    """Each figure above with the reason it is ``None`` (``""`` when it has a value).

    Groups are the ``attribute=value`` states; a group enters the parity and impact figures
    with at least ``min_group_size`` predictions, the equal-opportunity figure with at
    least ``min_group_size`` labelled positives (a TPR over 3 positives says little).

    Examples
    --------
    >>> from stream.metrics.window import WindowState
    >>> def group(preds: list[int]) -> WindowState:
    ...     state = WindowState("binary", 1)
    ...     state.add_predictions([{"request_id": str(i), "prediction": p}
    ...                            for i, p in enumerate(preds)])
    ...     return state
    >>> figs = fairness_figures({"g=a": group([1, 1, 0, 0]), "g=b": group([1, 0, 0, 0])}, "g")
    >>> figs["demographic_parity_difference"], figs["disparate_impact_ratio"]
    ((0.25, ''), (0.5, ''))
    >>> fairness_figures({"g=a": group([1, 0])}, "g")["disparate_impact_ratio"]
    (None, 'fewer_than_two_groups')
    """
    rates: list[float] = []
    tprs: list[float] = []
    groups = 0
    regression = False
    for seg, state in sorted(states.items()):
        parts = split_segment(seg)
        if parts is None or parts[0] != attribute or parts[1] == OTHER_VALUE:
            continue
        if state.task == "regression":
            regression = True
            continue
        groups += 1
        n, pos = state.decisions.counts["n"], state.decisions.counts["positive"]
        if n >= min_group_size and n > 0:
            rates.append(pos / n)
        tp, actual = _tpr_counts(state)
        if actual >= min_group_size and actual > 0:
            tprs.append(tp / actual)

    def missing(found: list[float]) -> str:
        if regression and not groups:
            return NOT_CLASSIFICATION
        return FEWER_THAN_TWO_GROUPS if groups < 2 else GROUPS_BELOW_MIN_SIZE

    out: dict[str, tuple[float | None, str]] = {}
    if len(rates) >= 2:
        out[_METRICS[0]] = (max(rates) - min(rates), "")
        out[_METRICS[1]] = ((min(rates) / max(rates), "") if max(rates) > 0
                            else (None, NO_POSITIVE_PREDICTIONS))
    else:
        out[_METRICS[0]] = out[_METRICS[1]] = (None, missing(rates))
    out[_METRICS[2]] = ((max(tprs) - min(tprs), "") if len(tprs) >= 2
                        else (None, missing(tprs)))
    return out


def fairness_metrics(
    states: Mapping[str, WindowState], attribute: str, *, min_group_size: int = 1
) -> dict[str, float | None]:
    """The three figures above for ``attribute`` from ``{segment: state}``."""
    return {name: value for name, (value, _) in fairness_figures(
        states, attribute, min_group_size=min_group_size).items()}


def fairness_rows(
    states: Mapping[str, WindowState],
    attribute: str,
    key: WindowKey,
    revision: int,
    computed_at: int,
    *,
    min_group_size: int = 1,
) -> list[MetricRow]:
    """Rows family "fairness", segment "all", feature = attribute (``key.segment`` ignored);
    a NULL value carries its ``reason``."""
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
            reason,
        )
        for metric, (value, reason) in fairness_figures(
            states, attribute, min_group_size=min_group_size
        ).items()
    ]
