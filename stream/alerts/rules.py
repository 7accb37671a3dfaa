"""Rule evaluation over the rows of one window: which rows a rule reads, and its verdict.

A window's rows are flattened into observations keyed by ``(source, family, metric,
feature, segment)``: metric rows as they are (``source="metric"``), drift rows as one
observation per field (``source="drift"``, metric ``drifted``/``statistic``/``p_value``/
``p_value_adjusted``). A rule reads the observations it selects; a missing or ``None`` value
gives no verdict (it neither fires nor resolves an alert: "no data" is not "fine").
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from stream.config import AlertRule
from stream.results import ALL_SEGMENT, DriftRow, MetricRow

ObsKey = tuple[str, str, str, str, str]  # source, family, metric, feature, segment
DRIFT_FIELDS: Final = ("drifted", "statistic", "p_value", "p_value_adjusted")

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule on one (segment, feature) of one window: breached or not."""

    rule: AlertRule
    segment: str
    feature: str
    value: float
    breach: bool


def observations(
    drift: Iterable[DriftRow], metrics: Iterable[MetricRow]
) -> dict[ObsKey, float | None]:
    """Every figure of a window, keyed for rule selection."""
    out: dict[ObsKey, float | None] = {}
    for d in drift:
        values = {"drifted": None if d.drifted is None else float(d.drifted),
                  "statistic": d.statistic, "p_value": d.p_value,
                  "p_value_adjusted": d.p_value_adjusted}
        for name, value in values.items():
            out[("drift", "drift", name, d.feature, d.segment)] = value
    for m in metrics:
        out[("metric", m.family, m.metric, m.feature, m.segment)] = m.value
    return out


def _matches(wanted: str | None, actual: str, default: str) -> bool:
    if wanted == "*":
        return True
    return actual == (default if wanted is None else wanted)


def compare(value: float, op: str, threshold: float) -> bool:
    return _OPS[op](value, threshold)


ObsIndex = dict[tuple[str, str], list[tuple[ObsKey, float | None]]]


def index_observations(obs: Mapping[ObsKey, float | None]) -> ObsIndex:
    """The observations by (source, metric), each list in key order: a window's rules
    share one sort (each rule sorted every observation: 1.5% of a worker's time)."""
    out: ObsIndex = {}
    for key, value in sorted(obs.items(), key=lambda kv: kv[0]):
        out.setdefault((key[0], key[2]), []).append((key, value))
    return out


def evaluate_rule(rule: AlertRule, obs: Mapping[ObsKey, float | None],
                  index: ObsIndex | None = None) -> list[Verdict]:
    """The rule's verdicts on one window (one per matching segment and feature), in key
    order; ``index``: :func:`index_observations` of ``obs``, when the caller has it."""
    out: list[Verdict] = []
    feature_default = "*" if rule.source == "drift" else ""
    if index is None:
        index = index_observations(obs)
    for (_, family, _, feature, segment), value in index.get((rule.source, rule.metric), ()):
        if value is None:
            continue
        if rule.family is not None and family != rule.family:
            continue
        if not _matches(rule.segment, segment, ALL_SEGMENT):
            continue
        wanted = rule.feature if rule.feature is not None else feature_default
        if not _matches(wanted, feature, ""):
            continue
        out.append(Verdict(rule, segment, feature, float(value),
                           compare(float(value), rule.op, rule.threshold)))
    return out


def applies(rule: AlertRule, model_id: str) -> bool:
    return rule.model_id is None or rule.model_id == model_id


def fingerprint(rule: str, model_id: str, model_version: str, segment: str,
                feature: str) -> str:
    """Identifies one alert across its life: rule, model, version, segment, feature."""
    raw = orjson.dumps([rule, model_id, model_version, segment, feature])
    return hashlib.sha256(raw).hexdigest()[:20]
