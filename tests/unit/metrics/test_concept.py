"""Page-Hinkley: pinned detection index on a seeded step, no alarm when stationary, state I/O."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from stream.config import ModelSettings
from stream.errors import MetricsError
from stream.metrics.concept import PageHinkley, event_error


def _first_detection(ph: PageHinkley, xs: np.ndarray) -> int | None:
    for i, x in enumerate(xs):
        if ph.update(float(x)).drift_detected:
            return i
    return None


def test_step_change_is_detected_at_pinned_index() -> None:
    rng = np.random.default_rng(42)
    xs = np.concatenate([rng.normal(0, 1, 500), rng.normal(3, 1, 500)])
    assert _first_detection(PageHinkley(mode="up"), xs) == 513
    assert _first_detection(PageHinkley(mode="both"), xs) == 513
    assert _first_detection(PageHinkley(mode="down"), xs) is None


def test_error_rate_step_on_a_01_stream() -> None:
    rng = np.random.default_rng(7)
    errors = np.concatenate([rng.random(2000) < 0.1, rng.random(2000) < 0.6]).astype(float)
    idx = _first_detection(PageHinkley(threshold=20, mode="up"), errors)
    assert idx == 2037  # 37 events after the break


def test_decrease_detected_and_stationary_stream_is_quiet() -> None:
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.normal(5, 1, 400), rng.normal(1, 1, 400)])
    idx = _first_detection(PageHinkley(mode="down"), xs)
    assert idx is not None and 400 <= idx < 450
    # a slack of 0.1 sd: a stationary stream never reaches the threshold
    assert _first_detection(PageHinkley(delta=0.1), rng.normal(0, 1, 5000)) is None
    # with the default slack (0.005) a long unit-variance random walk eventually does
    assert _first_detection(PageHinkley(), rng.normal(0, 1, 5000)) is not None


def test_resets_after_detection_and_min_instances() -> None:
    ph = PageHinkley(min_instances=5, threshold=1.0, delta=0.0, mode="up")
    for x in (0, 0, 10):
        ph.update(x)
    assert not ph.drift_detected and ph.n == 3  # too early even though the sum is large
    for x in (10, 10):
        ph.update(x)
    assert ph.drift_detected
    ph.update(0.0)
    assert ph.n == 1 and not ph.drift_detected


def test_state_round_trip_mid_stream_gives_same_index() -> None:
    rng = np.random.default_rng(42)
    xs = np.concatenate([rng.normal(0, 1, 500), rng.normal(3, 1, 500)])
    ph = PageHinkley(mode="up")
    for x in xs[:300]:
        ph.update(float(x))
    restored = PageHinkley.from_dict(orjson.loads(orjson.dumps(ph.to_dict())))
    assert restored == ph
    assert _first_detection(restored, xs[300:]) == 513 - 300
    assert PageHinkley.from_dict(PageHinkley().to_dict()) == PageHinkley()


def test_invalid_parameters() -> None:
    with pytest.raises(MetricsError):
        PageHinkley(mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(MetricsError):
        PageHinkley(threshold=0)


def test_event_error() -> None:
    binary = ModelSettings()
    assert event_error({"probability": 0.8}, 1, binary) == 0.0
    assert event_error({"probability": 0.8}, {"label": 0}, binary) == 1.0
    assert event_error({"prediction": 0, "probability": 0.8}, 0, binary) == 0.0
    assert event_error({}, 1, binary) is None
    assert event_error({"probability": 0.3}, None, binary) is None
    reg = ModelSettings(task="regression")
    assert event_error({"prediction": 2.5}, 1.0, reg) == 1.5
    mc = ModelSettings(task="multiclass")
    assert event_error({"prediction": "a"}, "b", mc) == 1.0


# ---------------------------------------------------------------------- window-level tests
def test_accuracy_drop_test_matches_chi_square_without_correction() -> None:
    import numpy as np
    from scipy.stats import chi2_contingency, norm

    from stream.metrics.concept import accuracy_drop_test

    for ref_c, ref_n, c, n in [(950, 1000, 880, 1000), (90, 100, 85, 120), (500, 600, 520, 600)]:
        z, p = accuracy_drop_test(ref_c, ref_n, c, n)
        table = np.array([[ref_c, ref_n - ref_c], [c, n - c]])
        chi2, p_two, _, _ = chi2_contingency(table, correction=False)
        assert z is not None and p is not None
        assert z**2 == pytest.approx(chi2, rel=1e-12)
        assert p == pytest.approx(norm.sf(z), rel=1e-12)
        assert min(p, 1 - p) * 2 == pytest.approx(p_two, rel=1e-9)


def test_accuracy_drop_test_edges_and_margin() -> None:
    from stream.metrics.concept import accuracy_drop_test

    assert accuracy_drop_test(0, 0, 5, 10) == (None, None)
    assert accuracy_drop_test(100, 100, 50, 50) == (0.0, 0.5)  # all correct both sides
    _, strict = accuracy_drop_test(1000, 1000, 970, 1000, margin=0.0)
    _, tolerant = accuracy_drop_test(1000, 1000, 970, 1000, margin=0.02)
    assert strict is not None and tolerant is not None
    assert strict < 1e-6 and tolerant > 1e-3  # 3 points: "significant", not clearly past 2


def test_cusum_step_known_values_floor_and_cap() -> None:
    import math

    from stream.metrics.concept import cusum_error_step, smoothed_rate

    llr = 20 * math.log(0.15 / 0.1) + 80 * math.log(0.85 / 0.9)
    assert cusum_error_step(1.0, 20, 100, 0.1, 0.05, 50.0) == pytest.approx(1.0 + llr)
    assert cusum_error_step(1.0, 0, 100, 0.1, 0.05, 50.0) == 0.0
    assert cusum_error_step(0.0, 100, 100, 0.1, 0.05, 7.5) == 7.5
    assert smoothed_rate(0, 1) == 0.25
