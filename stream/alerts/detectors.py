"""The ``concept`` rows: what the alert evaluator adds to a window's rows before the rules.

Per model version it keeps a short history of window counts (errors and labelled pairs,
predictions, label coverage) and derives, for the window being evaluated:

- ``accuracy_drop`` = reference accuracy - window accuracy, and ``accuracy_drop_p_value``:
  one-sided two-proportion test that the window is below the reference by more than
  ``alerts.min_drop`` (:func:`stream.metrics.concept.accuracy_drop_test`);
- ``error_cusum``: a Bernoulli CUSUM of the error stream against the reference error rate,
  over the windows in event-time order (:func:`stream.metrics.concept.cusum_error_step`);
- ``label_coverage``: labelled / predicted (the performance rows' coverage, as a row a rule
  can read);
- ``volume_ratio`` and ``label_coverage_ratio``: the window's prediction count and label
  coverage over the median of up to 12 earlier windows (at least 3).

Only classifiers with a labelled reference get the first two (they need a reference
accuracy). All are pure functions of the history, so a replay or a revision recomputes them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stream.config import AlertSettings
from stream.errors import MetricsError
from stream.metrics.concept import accuracy_drop_test, cusum_error_step, smoothed_rate
from stream.metrics.drift_tests import get_method
from stream.metrics.reference import ReferenceProfile
from stream.results import ALL_SEGMENT, DriftRow, MetricRow, WindowKey

TRAILING = 12
MIN_TRAILING = 3


@dataclass(slots=True)
class History:
    """Counts of the last windows of one model version, and the CUSUM before them."""

    windows: dict[int, dict[str, float]] = field(default_factory=dict)
    base_window: int | None = None
    base_cusum: float = 0.0

    def update(self, window: int, rows: Iterable[MetricRow]) -> None:
        entry = self.windows.setdefault(window, {})
        for row in rows:
            if row.segment != ALL_SEGMENT or row.feature:
                continue
            if row.family == "performance" and row.metric == "accuracy" and row.value is not None:
                entry["n"] = float(row.sample_size)
                entry["k"] = float(round((1 - row.value) * row.sample_size))
            if row.family == "performance" and row.coverage is not None:
                entry["cov"] = row.coverage
            if row.family == "service" and row.metric == "count" and row.value is not None:
                entry["c"] = row.value

    def prune(self, keep: int, p0: float | None, alerts: AlertSettings) -> None:
        while len(self.windows) > keep:
            oldest = min(self.windows)
            entry = self.windows.pop(oldest)
            if p0 is not None and "n" in entry:
                self.base_cusum = cusum_error_step(self.base_cusum, int(entry["k"]),
                                                   int(entry["n"]), p0, alerts.cusum_delta,
                                                   alerts.cusum_cap)
            self.base_window = oldest

    def cusum(self, window: int, p0: float, alerts: AlertSettings) -> float:
        s = self.base_cusum
        for w in sorted(self.windows):
            if w > window:
                break
            entry = self.windows[w]
            if "n" in entry:
                s = cusum_error_step(s, int(entry["k"]), int(entry["n"]), p0,
                                     alerts.cusum_delta, alerts.cusum_cap)
        return s

    def ratio(self, window: int, name: str) -> float | None:
        entry = self.windows.get(window, {})
        if name not in entry:
            return None
        earlier = [self.windows[w][name] for w in sorted(self.windows)
                   if w < window and name in self.windows[w]][-TRAILING:]
        if len(earlier) < MIN_TRAILING:
            return None
        median = statistics.median(earlier)
        return entry[name] / median if median > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {"w": [[w, e] for w, e in sorted(self.windows.items())],
                "bw": self.base_window, "bs": self.base_cusum}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> History:
        return cls({int(w): dict(e) for w, e in raw["w"]}, raw["bw"], float(raw["bs"]))


def reference_accuracy(reference: ReferenceProfile | None) -> tuple[int, int] | None:
    """(correct, labelled) of the reference, when it has a labelled accuracy."""
    if reference is None or not reference.labelled:
        return None
    accuracy = reference.performance.get("accuracy")
    if accuracy is None:
        return None
    return round(accuracy * reference.labelled), reference.labelled


def concept_rows(
    key: WindowKey, history: History,
    reference: ReferenceProfile | None, alerts: AlertSettings, revision: int, now: int,
) -> list[MetricRow]:
    """The window's ``concept`` rows from its history entry (see the module docstring)."""
    entry = history.windows.get(key.window_start, {})
    n, k = int(entry.get("n", 0)), int(entry.get("k", 0))
    out: list[MetricRow] = []

    def row(metric: str, value: float | None, size: int, rev: int) -> None:
        if value is not None:
            out.append(MetricRow(key.model_id, key.model_version, ALL_SEGMENT,
                                 key.window_start, key.window_end, "concept", metric, "",
                                 value, size, n, entry.get("cov"), rev, now))

    ref = reference_accuracy(reference)
    if ref is not None and n > 0:
        correct_ref, n_ref = ref
        _, p_value = accuracy_drop_test(correct_ref, n_ref, n - k, n, alerts.min_drop)
        row("accuracy_drop", correct_ref / n_ref - (n - k) / n, n, revision)
        row("accuracy_drop_p_value", p_value, n, revision)
        p0 = smoothed_rate(n_ref - correct_ref, n_ref)
        row("error_cusum", history.cusum(key.window_start, p0, alerts), n, revision)
    row("label_coverage", entry.get("cov"), n, revision)
    row("volume_ratio", history.ratio(key.window_start, "c"), int(entry.get("c", 0)), 0)
    row("label_coverage_ratio", history.ratio(key.window_start, "cov"), n, revision)
    return out


def drift_contributors(drift: Iterable[DriftRow], segment: str,
                       top: int = 5) -> list[tuple[str, float, str]]:
    """Features by how far past their threshold they are: ``-log10(p) / -log10(alpha)`` for
    p-value methods, ``statistic / threshold`` for distances (1 = at the threshold)."""
    import math

    scored = []
    for d in drift:
        if d.segment != segment or d.statistic is None:
            continue
        if d.p_value_adjusted is not None and 0 < d.threshold < 1 and _is_test(d.method):
            score = -math.log10(max(d.p_value_adjusted, 1e-300)) / -math.log10(d.threshold)
        else:
            score = d.statistic / d.threshold if d.threshold else d.statistic
        detail = f"{d.method} {d.statistic:.4g}" + (", drifted" if d.drifted else "")
        scored.append((d.feature, score, detail))
    scored.sort(key=lambda t: (-t[1], t[0]))
    return scored[:top]


def _is_test(method: str) -> bool:
    try:
        return get_method(method).kind == "p_value"
    except MetricsError:
        return False


def segment_contributors(metrics: Iterable[MetricRow], baseline: float | None,
                         min_size: int, top: int = 3) -> list[tuple[str, float, str]]:
    """Segments whose accuracy fell most below ``baseline`` (the reference accuracy, or the
    whole traffic's when there is none)."""
    rows = [m for m in metrics if m.family == "performance" and m.metric == "accuracy"
            and m.value is not None]
    if baseline is None:
        baseline = next((m.value for m in rows if m.segment == ALL_SEGMENT), None)
    if baseline is None:
        return []
    out = [(m.segment, baseline - float(m.value or 0.0),
            f"accuracy {m.value:.4g} over {m.sample_size} labels")
           for m in rows if m.segment != ALL_SEGMENT and m.sample_size >= min_size]
    out.sort(key=lambda t: (-t[1], t[0]))
    return out[:top]
