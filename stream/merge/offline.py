"""The same window results from a finite list of events, in one pass, without Kafka.

What the streaming topology must equal, whatever the partitioning, arrival order or restarts
(the tests compare the two), and a way to backfill or check a window by hand: group the
predictions by model version and event-time window, route them to segments, add the labelled
pairs, cap the segments and evaluate, exactly as stage 2 does on merged partials.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from stream.config import Settings
from stream.ingest.counts import DUPLICATE_LABELS, DUPLICATE_PREDICTIONS, ingest_rows
from stream.merge.stage import References, evaluate_closed_window
from stream.metrics.segments import SegmentRouter, cap_segments
from stream.metrics.window import WindowState
from stream.results import ALL_SEGMENT, DriftRow, MetricRow, WindowResults
from stream.windows.frames import WindowId, window_start


def offline_results(
    predictions: Iterable[Mapping[str, Any]],
    labels: Iterable[Mapping[str, Any]],
    settings: Settings,
    references: References,
    computed_at: int = 0,
) -> WindowResults:
    """Results of every window of ``predictions`` (validated events: epoch-ms timestamps).

    Duplicates count once (the first of a ``request_id`` wins, as in the stream) and are
    counted in the ``ingest`` rows (a duplicate prediction in its own window, a duplicate
    label in its prediction's); a label joins when its ``request_id`` has a prediction. No
    lateness applies: every event is in; no event was rejected.
    """
    size_ms = settings.windows.size_s * 1000
    metrics = settings.metrics
    local_cap = 4 * metrics.segment_cap
    label_of: dict[str, Any] = {}
    repeated_labels: Counter[str] = Counter()
    for label in labels:
        if label["request_id"] in label_of:
            repeated_labels[label["request_id"]] += 1
        label_of.setdefault(label["request_id"], label["label"])
    windows: dict[WindowId, list[Mapping[str, Any]]] = {}
    window_of: dict[str, WindowId] = {}
    counts: dict[WindowId, Counter[str]] = {}
    for event in predictions:
        wid = WindowId(window_start(int(event["timestamp"]), size_ms), event["model_id"],
                       event.get("model_version", ""))
        if event["request_id"] in window_of:
            counts.setdefault(wid, Counter())[DUPLICATE_PREDICTIONS] += 1
            continue
        window_of[event["request_id"]] = wid
        windows.setdefault(wid, []).append(event)
    for request_id, n in repeated_labels.items():  # a label's window is its prediction's
        if request_id in window_of:
            counts.setdefault(window_of[request_id], Counter())[DUPLICATE_LABELS] += n
    drift: list[DriftRow] = []
    rows: list[MetricRow] = []
    for wid, events in sorted(windows.items()):
        model = metrics.model(wid.model_id)
        router = SegmentRouter(metrics.routed_segments(), local_cap)
        states: dict[str, WindowState] = {}
        for seg, group in router.group(events).items():
            state = states[seg] = WindowState.for_model(model, metrics)
            state.add_predictions(group)
            pairs = [(e, label_of[e["request_id"]]) for e in group if e["request_id"] in label_of]
            state.add_labelled(pairs)
        capped = cap_segments(states, metrics.segment_cap)
        result = evaluate_closed_window(wid, capped, 0, settings,
                                        references.get(wid.model_id, wid.model_version),
                                        computed_at)
        drift.extend(result.drift)
        rows.extend(result.metrics)
        everything = capped[ALL_SEGMENT]
        rows.extend(ingest_rows(wid, size_ms, everything.n_predictions, 0,
                                everything.n_labelled, counts.get(wid, Counter()), computed_at))
    return WindowResults(tuple(drift), tuple(rows))
