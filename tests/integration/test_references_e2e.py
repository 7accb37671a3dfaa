"""Reference profiles travel on the compacted references topic to every worker."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from stream.merge.references import FileReferences, TopicReferences, publish_reference
from stream.metrics.reference import ReferenceProfile
from stream.metrics.segments import SegmentRouter
from stream.metrics.window import WindowState
from stream.sdk.client import MonitorClient
from stream.topics import ensure_topics

from .test_topology_e2e import FAST, T0, ResultsReader, events, expected, wait_for_results
from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration


def test_published_reference_reaches_a_reader_and_replaces_the_file(
        bootstrap: str, tmp_path: Path) -> None:
    ref_file = tmp_path / "ref.jsonl"
    file_events, _ = events(200, seed=1)
    ref_file.write_bytes(b"\n".join(orjson.dumps(e) for e in file_events))
    settings, _ = make_settings(bootstrap, tmp_path,
                                metrics={"models": {"m": {"reference_path": str(ref_file)}}})
    ensure_topics(settings)
    from_file = ReferenceProfile.from_file(ref_file, settings.metrics.model("m"))
    reader = TopicReferences(settings)
    reader.start(timeout=10)
    try:
        assert reader.get("m", "v1") == from_file  # nothing on the topic: the file
        assert reader.get("other", "") is None
        published = ReferenceProfile.from_events(events(300, seed=2)[0],
                                                 settings.metrics.model("m"))
        publish_reference(settings, "m", published)
        deadline = time.monotonic() + 10
        while reader.get("m", "v1") != published and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reader.get("m", "v1") == published  # followed while running
    finally:
        reader.stop()
    late_reader = TopicReferences(settings)
    late_reader.start(timeout=10)
    try:
        assert late_reader.get("m", "v1") == published  # read to the end at start
    finally:
        late_reader.stop()


def test_a_chosen_window_becomes_the_reference(bootstrap: str, tmp_path: Path) -> None:
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 2}, windows=FAST, store={"kind": "none"},
        metrics={"segments": ["country"], "sample_capacity": 300, "min_sample_size": 10,
                 "models": {"m": {"reference_window_start": T0}}})
    ensure_topics(settings)
    preds, _ = events(900, seed=41)  # three windows from T0, no labels
    first = [e for e in preds if e["timestamp"] < T0 + 60_000]
    rest = [e for e in preds if e["timestamp"] >= T0 + 60_000]
    references = TopicReferences(settings)
    references.start(timeout=10)
    worker = WorkerProcess(config, settings)
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")

    try:
        with MonitorClient.from_settings(settings) as client:
            for event in first:
                client.log_prediction(event)
        deadline = time.monotonic() + 90
        while references.get("m", "v1") is None and time.monotonic() < deadline:
            time.sleep(0.5)
        profile = references.get("m", "v1")
        assert profile is not None, "the first window's profile was not published"
        # The merged window, exactly: the whole, and each country's own (segment drift).
        states = {}
        for segment, rows in SegmentRouter(["country"], 100).group(first).items():
            states[segment] = WindowState.for_model(settings.metrics.model("m"),
                                                    settings.metrics)
            states[segment].add_predictions(rows)
        assert len(states) > 2 and profile.segments
        assert profile == ReferenceProfile.from_window(states)
        with MonitorClient.from_settings(settings) as client:
            for event in rest:
                client.log_prediction(event)
        offline_refs = FileReferences(settings)
        offline_refs.put("m", profile)
        # The partitions were idle during the pause; the window right after it can be
        # finalised before both report back (idleness is a trade-off, docs/delivery.md), so
        # the last window is the one compared in full.
        last = T0 + 120_000
        want = {k: v for k, v in expected(settings, rest, [], offline_refs).items()
                if k[3] == last}
        assert any(k[4] == "drift" for k in want)
        diff = wait_for_results(reader, want, [worker], subset=True)
        assert not diff, "\n".join(diff[:10])
        assert any(k[3] == T0 + 60_000 and k[4] == "drift" for k in reader.rows)
        assert not any(k[3] == T0 and k[4] == "drift" for k in reader.rows), (
            "the reference window itself had no reference yet")
    finally:
        reader.close()
        worker.stop()
        references.stop()
