"""One window of one model through the rules: concept rows, verdicts, state changes.

:class:`ModelAlerts` is the whole alert state of one model (all its versions), serialised
as one value of the evaluator's table; :meth:`ModelAlerts.evaluate` is pure apart from
updating that state. The caller publishes the returned alerts and rows, awaits their
delivery, and only then stores the state and acks the input: a crash before that replays
the window, which recomputes the same state changes with the same ids (see
:mod:`stream.alerts.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from stream.alerts.defaults import rules_for
from stream.alerts.detectors import (
    History,
    concept_rows,
    drift_contributors,
    reference_accuracy,
    segment_contributors,
)
from stream.alerts.lifecycle import Track, Transition
from stream.alerts.messages import alert_id, describe
from stream.alerts.rules import (
    ObsKey,
    evaluate_rule,
    fingerprint,
    index_observations,
    observations,
)
from stream.config import AlertRule, Settings
from stream.metrics.concept import smoothed_rate
from stream.metrics.reference import ReferenceProfile
from stream.results import (
    AlertRecord,
    Contributor,
    DriftRow,
    MetricRow,
    WindowKey,
    WindowResults,
)

_DRIFT_FAMILIES = frozenset({"drift"})
_PERFORMANCE_FAMILIES = frozenset({"performance", "concept", "estimate", "fairness"})


@dataclass(slots=True)
class Outcome:
    """What one evaluation produced: rows for the results topic, alerts for the alert topic."""

    rows: list[MetricRow] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    stale: int = 0  # verdicts for windows older than the kept history (ignored)


def window_of(results: WindowResults) -> WindowKey | None:
    rows: list[MetricRow | DriftRow] = [*results.metrics, *results.drift]
    for row in rows:
        return WindowKey(row.model_id, row.model_version, "", row.window_start,
                         row.window_end)
    return None


class ModelAlerts:
    """Alert state of one model: per-version histories and per-fingerprint tracks."""

    def __init__(self, raw: bytes | None = None) -> None:
        doc: dict[str, Any] = orjson.loads(raw) if raw else {"h": {}, "t": {}}
        self.histories = {v: History.from_json(h) for v, h in doc["h"].items()}
        self.tracks = {fp: Track.from_json(t) for fp, t in doc["t"].items()}
        self.newest: int | None = doc.get("w")  # the model's newest window evaluated

    def to_bytes(self) -> bytes:
        return orjson.dumps({"h": {v: h.to_json() for v, h in self.histories.items()},
                             "t": {fp: t.to_json() for fp, t in self.tracks.items()},
                             "w": self.newest})

    def open_alerts(self) -> list[str]:
        return sorted(fp for fp, t in self.tracks.items() if t.published == "firing")

    def evaluate(self, results: WindowResults, settings: Settings,
                 reference: ReferenceProfile | None, now: int) -> Outcome:
        """Evaluate one window's rows (a finalised window or a revision of it)."""
        out = Outcome()
        key = window_of(results)
        if key is None:
            return out
        alerts = settings.alerts
        size_ms = settings.windows.size_s * 1000
        horizon = alerts.history_windows * size_ms
        history = self.histories.setdefault(key.model_version, History())
        if (history.base_window is not None and key.window_start <= history.base_window) or (
                self.newest is not None and key.window_start < self.newest - horizon):
            out.stale += 1  # older than the kept history: too late to count
            return out
        self.newest = max(self.newest or key.window_start, key.window_start)
        history.update(key.window_start, results.metrics)
        revision = max((m.revision for m in results.metrics if m.family == "performance"),
                       default=0)
        out.rows = concept_rows(key, history, reference, alerts, revision, now)
        ref = reference_accuracy(reference)
        p0 = None
        if ref is not None:
            p0 = smoothed_rate(ref[1] - ref[0], ref[1])
        history.prune(alerts.history_windows, p0, alerts)
        obs = observations(results.drift, [*results.metrics, *out.rows])
        index = index_observations(obs)
        for rule in rules_for(settings, key.model_id):
            for verdict in evaluate_rule(rule, obs, index):
                fp = fingerprint(rule.name, key.model_id, key.model_version, verdict.segment,
                                 verdict.feature)
                track = self.tracks.setdefault(fp, Track())
                note = None
                if verdict.breach:  # what a firing at this window will say (kept with it)
                    note = [[[c.name, c.value, c.detail] for c in self._contributors(
                                rule, verdict.segment, results, reference, settings)],
                            self._context(rule, verdict.segment, obs, reference)]
                if not track.record(key.window_start, verdict.breach, verdict.value,
                                    alerts.history_windows, rule.for_windows,
                                    rule.resolve_windows, note):
                    out.stale += 1
                    continue
                for change in track.transitions(rule.for_windows, rule.resolve_windows):
                    contributors: tuple[Contributor, ...] = ()
                    context = ""
                    if change.note is not None:
                        contributors = tuple(Contributor(*c) for c in change.note[0])
                        context = change.note[1]
                    elif change.window == key.window_start:
                        contributors = self._contributors(rule, verdict.segment, results,
                                                          reference, settings)
                        context = self._context(rule, verdict.segment, obs, reference)
                    out.alerts.append(self._record(fp, rule, key, verdict.segment,
                                                   verdict.feature, change, size_ms,
                                                   contributors, now, context))
                    track.mark_published(change)
        self._forget_quiet(self.newest - horizon)
        return out

    def _forget_quiet(self, before: int) -> None:
        """Drop tracks that are not open and have had no verdict since ``before`` (a rule
        removed, a segment or version gone), and such versions' histories: the state stays
        bounded by what is live. An open alert is kept until it resolves."""
        for fp, track in list(self.tracks.items()):
            if track.published != "firing" and max(track.verdicts, default=-1) < before:
                del self.tracks[fp]
        for version, history in list(self.histories.items()):
            if max(history.windows, default=-1) < before:
                del self.histories[version]

    @staticmethod
    def _contributors(rule: AlertRule, segment: str, results: WindowResults,
                      reference: ReferenceProfile | None,
                      settings: Settings) -> tuple[Contributor, ...]:
        family = rule.family or ""
        if rule.source == "drift" or family in _DRIFT_FAMILIES:
            found = drift_contributors(results.drift, segment)
        elif family in _PERFORMANCE_FAMILIES:
            ref = reference_accuracy(reference)
            baseline = ref[0] / ref[1] if ref is not None else None
            found = segment_contributors(results.metrics, baseline,
                                         settings.metrics.min_sample_size)
        else:
            return ()
        return tuple(Contributor(name, value, detail) for name, value, detail in found)

    @staticmethod
    def _context(rule: AlertRule, segment: str, obs: dict[ObsKey, float | None],
                 reference: ReferenceProfile | None) -> str:
        """For a performance or concept rule: the accuracy behind the derived figure."""
        if (rule.family or "") not in _PERFORMANCE_FAMILIES:
            return ""
        accuracy = obs.get(("metric", "performance", "accuracy", "", segment))
        if accuracy is None:
            return ""
        ref = reference_accuracy(reference)
        text = f"accuracy {accuracy:.4g}"
        if ref is not None:
            text += f" vs reference {ref[0] / ref[1]:.4g} over {ref[1]} labels"
        drop = obs.get(("metric", "concept", "accuracy_drop", "", segment))
        return text + (f", drop {drop:.3g}" if drop is not None else "")

    @staticmethod
    def _record(fp: str, rule: AlertRule, key: WindowKey, segment: str, feature: str,
                change: Transition, size_ms: int, contributors: tuple[Contributor, ...],
                now: int, context: str) -> AlertRecord:
        record = AlertRecord(
            id=alert_id(fp, change.state, change.window), fingerprint=fp,
            model_id=key.model_id, rule=rule.name, metric=rule.metric,
            feature=feature or None, segment=segment, window_start=change.window,
            window_end=change.window + size_ms, value=change.value,
            threshold=rule.threshold, severity=rule.severity, state=change.state,
            time=change.window + size_ms, message="", model_version=key.model_version,
            op=rule.op, contributors=contributors, detected_at=now)
        return replace(record, message=describe(record, context))


def window_model_key(results: WindowResults) -> bytes | None:
    """The key of a window's record for the evaluator: its model, so that all windows of a
    model meet on one partition (and one table key)."""
    key = window_of(results)
    return None if key is None else key.model_id.encode()
