"""Drift within a segment: measured against the reference's rows of that segment; the
feature that defines the segment gets no verdict (it is constant)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from stream.config import MetricsSettings, ModelSettings
from stream.metrics.evaluate import evaluate_window
from stream.metrics.reference import ReferenceProfile
from stream.metrics.sampling import pack, unpack
from stream.metrics.window import WindowState
from stream.results import WindowKey


def test_segment_key_feature_is_not_tested_within_its_segment() -> None:
    model = ModelSettings()
    events = [{"request_id": f"r{i}", "features": {"country": "DE" if i % 2 else "FR",
                                                   "x": float(i % 7)},
               "prediction": i % 2, "probability": 0.5} for i in range(200)]
    reference = ReferenceProfile.from_events(events, model)
    state = WindowState("binary", 1)
    state.add_predictions([e for e in events if e["features"]["country"] == "DE"])
    settings = MetricsSettings(min_sample_size=10)

    def drifted_features(segment: str) -> set[str]:
        key = WindowKey("m", "v", segment, 0, 60_000)
        return {r.feature for r in evaluate_window(state, reference, settings, model, key, 0,
                                                   0).drift}

    assert drifted_features("country=DE") == {"x", "__prediction__"}
    assert drifted_features("all") == {"country", "x", "__prediction__"}


# ---------------------------------------------------------------- a segment's own reference
def _events(rng: np.random.Generator, country: str, n: int, mean: float,
            start: int = 0, **features: Any) -> list[dict[str, Any]]:
    return [{"request_id": f"{country}{start + i}", "segments": {"country": country},
             "features": {"amount": float(x), **features}, "prediction": int(x > mean),
             "probability": 0.5}
            for i, x in enumerate(rng.normal(mean, 20.0, size=n))]


def _drift(reference: ReferenceProfile, current: list[dict[str, Any]], segment: str,
           settings: MetricsSettings | None = None) -> dict[str, Any]:
    """The window's drift rows of one segment, by feature (the window holds ``current``)."""
    state = WindowState("binary", 1)
    state.add_predictions(current)
    key = WindowKey("m", "v", segment, 0, 60_000)
    rows = evaluate_window(state, reference, settings or MetricsSettings(), ModelSettings(),
                           key, 0, 0).drift
    return {r.feature: r for r in rows}


def test_a_segment_is_measured_against_the_reference_rows_of_that_segment() -> None:
    """Brazil's amounts are higher than the rest, in the reference and now alike: nothing
    changed, so Brazil has not drifted. Against the whole reference it showed as drifted in
    every window. The figures are scipy's on Brazil's rows of both sides."""
    rng = np.random.default_rng(7)
    br_ref = _events(rng, "BR", 400, 200.0)
    reference_events = _events(rng, "DE", 1600, 100.0) + br_ref
    br_now = _events(rng, "BR", 300, 200.0, start=10_000)
    own = ReferenceProfile.from_events(reference_events, ModelSettings(), segments=["country"])
    whole = ReferenceProfile.from_events(reference_events, ModelSettings())

    row = _drift(own, br_now, "country=BR")["amount"]
    expected = stats.ks_2samp([e["features"]["amount"] for e in br_ref],
                              [e["features"]["amount"] for e in br_now])
    assert (row.method, row.reference_size, row.current_size) == ("ks", 400, 300)
    assert row.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert row.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert row.drifted is False
    assert _drift(whole, br_now, "country=BR")["amount"].drifted is True
    # "all" and a feature-level check stay on the whole reference.
    assert _drift(own, br_now, "all")["amount"].reference_size == 2000


def test_a_segment_the_reference_barely_holds_is_measured_against_the_whole() -> None:
    rng = np.random.default_rng(8)
    reference = ReferenceProfile.from_events(
        _events(rng, "DE", 1000, 100.0) + _events(rng, "FR", 29, 100.0),
        ModelSettings(), segments=["country"])
    assert reference.segments["country=FR"].rows == 29  # kept, but under min_sample_size
    fr = _drift(reference, _events(rng, "FR", 100, 100.0, start=500), "country=FR")
    jp = _drift(reference, _events(rng, "JP", 100, 100.0), "country=JP")
    assert fr["amount"].reference_size == jp["amount"].reference_size == 1029
    assert _drift(reference, _events(rng, "FR", 100, 100.0, start=500), "country=FR",
                  MetricsSettings(min_sample_size=29))["amount"].reference_size == 29


def test_a_column_the_segments_reference_rows_never_had_gets_no_verdict() -> None:
    """Only German rows carried ``coupon`` in the reference: Brazil's window has it, and no
    reference to say whether that is usual for Brazil."""
    rng = np.random.default_rng(9)
    reference = ReferenceProfile.from_events(
        _events(rng, "DE", 500, 100.0, coupon="A") + _events(rng, "BR", 500, 200.0),
        ModelSettings(), segments=["country"])
    row = _drift(reference, _events(rng, "BR", 100, 200.0, start=900, coupon="A"),
                 "country=BR")["coupon"]
    assert (row.drifted, row.statistic, row.reference_size, row.current_size) == (
        None, None, 0, 100)


def test_the_reference_keeps_the_largest_values_of_each_key_and_travels_whole() -> None:
    rng = np.random.default_rng(10)
    events = [e for country, n in [("DE", 300), ("FR", 200), ("BR", 100), ("JP", 50)]
              for e in _events(rng, country, n, 100.0, device="ios" if n > 100 else "web")]
    reference = ReferenceProfile.from_events(events, ModelSettings(),
                                             segments=["country", "device"], segment_cap=2)
    assert {s: p.rows for s, p in reference.segments.items()} == {
        "country=DE": 300, "country=FR": 200, "device=ios": 500, "device=web": 150}
    back = ReferenceProfile.from_bytes(reference.to_bytes())
    assert back == reference and set(back.segments) == set(reference.segments)
    # the whole profile does not change with the segments
    assert back.columns == ReferenceProfile.from_events(events, ModelSettings()).columns


def test_a_profile_of_the_previous_version_loads_with_no_segments() -> None:
    """Profiles published before segments had their own (version 2) still load; every
    segment is then measured against the whole, as it was."""
    rng = np.random.default_rng(11)
    profile = ReferenceProfile.from_events(_events(rng, "DE", 100, 100.0), ModelSettings(),
                                           segments=["country"])
    meta, arrays = unpack(profile.to_bytes())
    meta["v"] = 2
    del meta["segments"]
    old = ReferenceProfile.from_bytes(pack(meta, {k: v for k, v in arrays.items()
                                                  if not k.startswith("s")}))
    assert old.segments == {} and old.columns == profile.columns
    assert old.for_segment("country=DE", 1) is old


def test_a_reference_window_keeps_its_segments_own_profiles() -> None:
    """``reference_window_start``: the window's merged states become the reference, with a
    profile per ``key=value`` segment (not ``key=other``, whose values vary)."""
    rng = np.random.default_rng(12)
    states = {}
    for seg, country in [("all", None), ("country=DE", "DE"), ("country=other", "XX")]:
        state = WindowState("binary", 1)
        rows = _events(rng, country or "DE", 50, 100.0)
        state.add_predictions(rows)
        states[seg] = state
    profile = ReferenceProfile.from_window(states)
    assert set(profile.segments) == {"country=DE"}
    assert profile.segments["country=DE"].rows == 50 and profile.rows == 50
