"""Within a segment, the feature that defines it gets no drift verdict (it is constant)."""

from __future__ import annotations

from stream.config import MetricsSettings, ModelSettings
from stream.metrics.evaluate import evaluate_window
from stream.metrics.reference import ReferenceProfile
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
