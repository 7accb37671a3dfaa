"""False alarms and detection delay of the default alert rules (not a pytest test).

Run: ``.venv/bin/python load_tests/bench_alerts.py [--seeds 40] [--windows 40] [--noise 0.1]``

SEA streams (tests/sea.py) through the offline computation (the same rows the stream writes)
and the alert evaluator, window by window in event-time order, per seed:

- stationary: how many windows fire each default rule (false alarms per 1000 windows);
- pure concept change halfway (20 s into a window): the first performance or concept alert,
  in windows after the change window (0 = the window containing the change);
- for comparison, the Page-Hinkley detector as built (River's defaults, ``mode="up"``) on the
  ordered per-pair error stream of the stationary runs: alarms per 1000 windows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.alerts.evaluator import ModelAlerts
from stream.config import ModelSettings, Settings
from stream.merge.offline import offline_results
from stream.metrics.concept import PageHinkley
from stream.metrics.reference import ReferenceProfile
from stream.results import AlertRecord, WindowResults
from tests.sea import T0, WINDOW_MS, reference_events, sea_events


class OneReference:
    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile

    def get(self, model_id: str, model_version: str) -> ReferenceProfile | None:
        return self.profile


def by_window(results: WindowResults) -> list[WindowResults]:
    drift: dict[int, list[Any]] = defaultdict(list)
    metrics: dict[int, list[Any]] = defaultdict(list)
    for d in results.drift:
        drift[d.window_start].append(d)
    for m in results.metrics:
        metrics[m.window_start].append(m)
    return [WindowResults(tuple(drift[w]), tuple(metrics[w])) for w in sorted(metrics)]


def run(seed: int, windows: int, per_window: int, noise: float,
        concept_at: int | None) -> tuple[list[AlertRecord], list[dict[str, Any]], list[Any]]:
    settings = Settings(windows={"size_s": 60}, metrics={"min_sample_size": 30})
    ref = ReferenceProfile.from_events(reference_events("m", 3000, seed + 10_000, noise),
                                       ModelSettings())
    concept = (concept_at, T0 + windows * WINDOW_MS) if concept_at is not None else None
    preds, labels = sea_events("m", range(windows), per_window, seed, concept=concept,
                               noise=noise)
    results = offline_results(preds, labels, settings, OneReference(ref))
    state = ModelAlerts()
    alerts: list[AlertRecord] = []
    for window in by_window(results):
        alerts.extend(state.evaluate(window, settings, ref, 0).alerts)
    return alerts, preds, labels


def page_hinkley_alarms(preds: list[dict[str, Any]], labels: list[dict[str, Any]]) -> list[int]:
    """Windows (by index) in which Page-Hinkley alarmed, pairs fed in event-time order."""
    ph = PageHinkley(mode="up")
    alarms = []
    for p, lab in zip(preds, labels, strict=True):
        if ph.update(float(p["prediction"] != lab["label"])).drift_detected:
            alarms.append((p["timestamp"] - T0) // WINDOW_MS)
    return alarms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--per-window", type=int, default=600)
    parser.add_argument("--noise", type=float, default=0.1)
    args = parser.parse_args()
    fired: Counter[str] = Counter()
    ph_alarms = 0
    ph_delays: list[int] = []
    ph_early = 0
    delays: list[int] = []
    early = 0
    change_window = args.windows // 2
    for seed in range(args.seeds):
        alerts, preds, labels = run(seed, args.windows, args.per_window, args.noise, None)
        fired.update(a.rule for a in alerts if a.state == "firing")
        ph_alarms += len(page_hinkley_alarms(preds, labels))
        at = T0 + change_window * WINDOW_MS + 20_000
        alerts, preds, labels = run(seed, args.windows, args.per_window, args.noise, at)
        ph = page_hinkley_alarms(preds, labels)
        ph_early += any(w < change_window for w in ph)
        after = [w - change_window for w in ph if w >= change_window]
        ph_delays.append(after[0] if after else 10**6)
        first = [(a.window_start - T0) // WINDOW_MS for a in alerts if a.state == "firing"
                 and a.rule in ("performance_drop", "concept_drift")]
        others_before = [a for a in alerts if a.state == "firing"
                         and (a.window_start - T0) // WINDOW_MS < change_window]
        early += bool(others_before)
        delays.append(min(first) - change_window if first else 10**6)
    total = args.seeds * args.windows
    print(f"stationary: {args.seeds} seeds x {args.windows} windows x {args.per_window} "
          f"events, label noise {args.noise}")
    print(f"  firings per 1000 windows, by rule: "
          f"{ {r: round(1000 * c / total, 2) for r, c in fired.items()} or 'none'} "
          f"({sum(fired.values())} in {total} windows)")
    print(f"  Page-Hinkley as built (per pair, mode=up): {1000 * ph_alarms / total:.1f} "
          f"alarms per 1000 windows")
    found = [d for d in delays if d < 10**6]
    drop = 100 * 0.085 * (1 - 2 * args.noise)
    print(f"concept change (accuracy -{drop:.1f} points, 20 s into window {change_window}): "
          f"detected in {len(found)}/{len(delays)} runs; delay in windows "
          f"(0 = the change window): {dict(sorted(Counter(found).items()))}; "
          f"runs with an alert before the change: {early}")
    if found:
        print(f"  median delay {statistics.median(found)} windows")
    ph_found = [d for d in ph_delays if d < 10**6]
    print(f"  Page-Hinkley as built on the same streams: detected in {len(ph_found)}/"
          f"{len(ph_delays)}; delays {dict(sorted(Counter(ph_found).items()))}; "
          f"runs with an alarm before the change: {ph_early}")


if __name__ == "__main__":
    main()
