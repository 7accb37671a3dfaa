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


_ODD_VALUES = st.sampled_from(["DE", "FR", "US", "BR", "other", "", 1, 1.0, True, False, 0,
                                2.5, float("nan"), None, [1], {"a": 1}])


@st.composite
def _routed_events(draw: Any) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for field in ("segments", "features"):
        where = draw(st.sampled_from(["dict", "absent", "not a mapping"]))
        if where == "dict":
            event[field] = draw(st.dictionaries(st.sampled_from(["country", "device", "x"]),
                                                _ODD_VALUES, max_size=3))
        elif where == "not a mapping":
            event[field] = draw(st.sampled_from([None, "DE", 3, ["country"]]))
    return event


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.lists(_routed_events(), max_size=12), min_size=1, max_size=4),
       keys=st.sampled_from([["country"], ["country", "device"], ["device", "country", "x"],
                             []]),
       cap=st.integers(1, 4))
def test_rows_equal_routing_each_event_in_turn(batches: list[list[dict[str, Any]]],
                                               keys: list[str], cap: int) -> None:
    """``rows`` (key by key, values remembered) gives what routing every event in turn
    gives: the same rows per segment, the segments in the same order, the same admitted
    values after each batch; 1, 1.0 and True stay apart ("1", "1", "true")."""
    fast, slow = SegmentRouter(keys, cap), SegmentRouter(keys, cap)
    for events in batches:
        expected: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            for seg in slow.route(event):
                expected.setdefault(seg, []).append(i)
        got = fast.rows(events)
        assert list(got) == list(expected)
        assert {k: v.tolist() for k, v in got.items()} == expected
        assert fast.to_dict() == slow.to_dict()


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
