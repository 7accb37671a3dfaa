"""Segment routing and capping: bounded, deterministic, and independent of partitioning."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.errors import MetricsError
from stream.metrics.segments import (
    SegmentRouter,
    cap_segments,
    segment_value,
    split_segment,
)
from stream.metrics.window import WindowState


def _event(i: int, country: str | None) -> dict[str, Any]:
    segs = {"country": country} if country is not None else {}
    return {
        "request_id": f"r{i}",
        "segments": segs,
        "features": {"x": float(i % 7)},
        "probability": (i % 10) / 10,
    }


def _states(events: list[dict[str, Any]], router: SegmentRouter) -> dict[str, WindowState]:
    out: dict[str, WindowState] = {}
    for seg, evs in router.group(events).items():
        out.setdefault(seg, WindowState("binary", 1, sample_capacity=8)).add_predictions(evs)
    return out


def _merge_all(parts: list[dict[str, WindowState]]) -> dict[str, WindowState]:
    out: dict[str, WindowState] = {}
    for part in parts:
        for seg, s in part.items():
            out[seg] = out[seg].merge(s) if seg in out else s
    return out


def test_values_and_names() -> None:
    assert segment_value({"segments": {"c": "DE"}, "features": {"c": "FR"}}, "c") == "DE"
    assert segment_value({"features": {"flag": True}}, "flag") == "true"
    assert segment_value({}, "c") is None
    assert split_segment("country=a=b") == ("country", "a=b")
    assert split_segment("all") is None


def test_router_caps_new_values_and_round_trips() -> None:
    r = SegmentRouter(["country"], local_cap=2)
    routed = [r.route(_event(i, c)) for i, c in enumerate(["DE", "FR", "US", "DE", None])]
    assert routed == [
        ["all", "country=DE"],
        ["all", "country=FR"],
        ["all", "country=other"],
        ["all", "country=DE"],
        ["all"],
    ]
    again = SegmentRouter.from_dict(r.to_dict())
    assert again.route(_event(9, "US")) == ["all", "country=other"]
    assert again.route(_event(9, "FR")) == ["all", "country=FR"]
    with pytest.raises(MetricsError):
        SegmentRouter(["c"], 0)


def test_cap_keeps_top_k_by_volume_and_folds_the_rest() -> None:
    evs = [_event(i, c) for i, c in enumerate("AAAABBBCCD")]
    states = _states(evs, SegmentRouter(["country"], local_cap=100))
    capped = cap_segments(states, cap=2)
    assert set(capped) == {"all", "country=A", "country=B", "country=other"}
    assert capped["country=other"].n_predictions == 3
    assert capped["country=other"] == states["country=C"].merge(states["country=D"])
    assert capped["all"].n_predictions == 10
    with pytest.raises(MetricsError):
        cap_segments(states, 0)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.sampled_from("ABCDEFGH"), min_size=1, max_size=60),
    n_parts=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    cap=st.integers(1, 4),
)
def test_capped_result_is_independent_of_partitioning(
    values: list[str], n_parts: int, seed: int, cap: int
) -> None:
    evs = [_event(i, v) for i, v in enumerate(values)]
    one = cap_segments(_states(evs, SegmentRouter(["country"], local_cap=8)), cap)
    shuffled = evs[:]
    random.Random(seed).shuffle(shuffled)
    parts = [shuffled[i::n_parts] for i in range(n_parts)]
    partials = [_states(p, SegmentRouter(["country"], local_cap=8)) for p in parts if p]
    merged = cap_segments(_merge_all(partials), cap)
    assert set(merged) == set(one)
    for seg in one:
        assert merged[seg].to_bytes() == one[seg].to_bytes(), seg
