"""The records a closed window (or a revision of one) produces.

These are the rows of the ClickHouse contract (``clickhouse/``): the topology builds them, the
store writes them, the alert evaluator reads them. Each row is identified by
``(model_id, model_version, segment, window_start, metric or feature, revision)`` so writing it
twice changes nothing (ReplacingMergeTree on ``revision``).

Conventions shared by every producer and consumer of these rows:

- times are integer epoch milliseconds, UTC; ``window_end`` is exclusive;
- ``segment`` is ``"all"`` for the whole traffic of a model version, or ``"key=value"``
  (e.g. ``"country=DE"``); values beyond the configured cap are folded into ``"key=other"``;
- ``family`` of a metric row is one of :data:`METRIC_FAMILIES`;
- ``feature`` is ``""`` for model-level metrics, the feature name for per-feature ones, and
  ``"__prediction__"`` for the model's output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

ALL_SEGMENT: Final = "all"
PREDICTION_COLUMN: Final = "__prediction__"
METRIC_FAMILIES: Final = ("performance", "estimate", "quality", "service", "fairness", "drift",
                           "concept", "ingest", "distribution")

Family = Literal["performance", "estimate", "quality", "service", "fairness", "drift",
                 "concept", "ingest", "distribution"]


@dataclass(frozen=True, slots=True)
class WindowKey:
    """Identifies one window of one model version and one segment."""

    model_id: str
    model_version: str
    segment: str
    window_start: int
    window_end: int


# The rows are values, never changed once built, but not ``frozen``: a frozen dataclass's
# ``__init__`` sets each field through ``object.__setattr__``, 6x slower (2.4 against 0.4
# us), and stage 2 and the alerts agent build every row of every window (tens of thousands
# per backlog). ``eq`` without ``frozen`` leaves them unhashable: nothing keys on a row.
@dataclass(slots=True)
class DriftRow:
    """One feature's (or the prediction's) drift verdict in one window.

    ``drifted`` is ``None`` when no verdict can be given (no data, or fewer rows than the
    minimum sample size): "no verdict" is never reported as "no drift".
    """

    model_id: str
    model_version: str
    segment: str
    window_start: int
    window_end: int
    feature: str
    method: str
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None
    threshold: float
    drifted: bool | None
    reference_size: int
    current_size: int
    revision: int
    computed_at: int

    def as_dict(self) -> dict[str, Any]:
        # Every field is a scalar: no deep copy (dataclasses.asdict was most of the time
        # stage 2 spent encoding a window's rows).
        return {name: getattr(self, name) for name in DRIFT_FIELDS}


@dataclass(slots=True)
class MetricRow:
    """One figure of one window, in long format (one row per metric and feature)."""

    model_id: str
    model_version: str
    segment: str
    window_start: int
    window_end: int
    family: Family
    metric: str
    feature: str
    value: float | None
    sample_size: int
    labelled_count: int
    coverage: float | None
    revision: int
    computed_at: int
    #: Why ``value`` is NULL, when a reason is known (e.g. fairness ``groups_below_min_size``);
    #: ``""`` otherwise.
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in METRIC_FIELDS}

    def revised(self, revision: int, labelled_count: int, coverage: float | None) -> MetricRow:
        """The row at ``revision`` with those label figures, built directly:
        ``dataclasses.replace`` looks the fields up on every call (2.9 us against 0.4), and
        stage 2 settles every row of every window."""
        return MetricRow(self.model_id, self.model_version, self.segment, self.window_start,
                         self.window_end, self.family, self.metric, self.feature, self.value,
                         self.sample_size, labelled_count, coverage, revision,
                         self.computed_at, self.reason)


#: The rows' fields in order (the results topic's records and the tables' columns).
DRIFT_FIELDS: Final = tuple(f.name for f in fields(DriftRow))
METRIC_FIELDS: Final = tuple(f.name for f in fields(MetricRow))


@dataclass(frozen=True, slots=True)
class Contributor:
    """What an alert points at: a feature (drift) or a segment (performance), with its figure
    (``value``: the test statistic, or the segment's drop against the reference)."""

    name: str
    value: float | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert state change, as published on the alert topic (``schemas/alert.v2.schema.json``).

    ``id`` identifies the state change (fingerprint, state, window): a re-sent message has
    the same id. ``time`` is the end of the window that changed the state (event time, so a
    replay gives the same value); ``detected_at`` is the wall clock when it was evaluated.
    """

    id: str
    fingerprint: str
    model_id: str
    rule: str
    metric: str
    feature: str | None
    segment: str | None
    window_start: int
    window_end: int
    value: float | None
    threshold: float
    severity: Literal["info", "warning", "critical"]
    state: Literal["firing", "resolved"]
    time: int
    message: str
    schema_version: int = 2
    model_version: str = ""
    op: str = ">"
    contributors: tuple[Contributor, ...] = ()
    detected_at: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WindowResults:
    """Everything one window close or revision emits, handed to the store and alert evaluator."""

    drift: tuple[DriftRow, ...] = ()
    metrics: tuple[MetricRow, ...] = ()
