"""Label-free (CBPE) estimates: formulas, calibration, band coverage, reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from scipy.optimize import isotonic_regression

from stream.metrics.calibration import Calibration, IsotonicMap, pav
from stream.metrics.estimate import (
    binary_estimates,
    binning_bound,
    estimate_rows,
    window_estimates,
)
from stream.metrics.performance import performance_metrics
from stream.metrics.reference import ReferenceProfile
from stream.metrics.scorebins import ScoreBins, bin_index
from stream.metrics.synthetic import SHIFTS, binary_sample, multiclass_sample
from stream.metrics.window import WindowState


def _binary_state(probs: np.ndarray, labels: np.ndarray | None = None, decisions: Any = None,
                  tag: str = "") -> WindowState:
    s = WindowState("binary", 1, sample_capacity=100_000)
    evs = [
        {"request_id": f"{tag}{i}", "probability": float(p)}
        | ({"prediction": decisions[i]} if decisions is not None else {})
        for i, p in enumerate(probs)
    ]
    s.add_predictions(evs)
    if labels is not None:
        s.add_labelled(list(zip(evs, labels.tolist(), strict=True)))
    return s


def _rows(state: WindowState, cal: Calibration | None, z: float = 3.0,
          min_rows: int = 500) -> dict[str, float | None]:
    real = performance_metrics(state)
    return {m: v for m, v, _ in estimate_rows(state.task, state.scores, state.labelled_scores,
                                              cal, real, z=z, min_calibration_rows=min_rows)}


# ------------------------------------------------------------------ calibration
def test_pav_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    y, w = rng.random(300), rng.integers(1, 5, 300).astype(float)
    want = isotonic_regression(y, weights=w).x
    np.testing.assert_allclose(pav(y, w), want, atol=1e-12)


def test_isotonic_map_matches_sklearn_known_answer() -> None:
    """Pinned from scikit-learn 1.9.1 ``IsotonicRegression(out_of_bounds="clip")``."""
    x = np.array([0.09, 0.24, 0.8, 0.58, 0.09, 0.43, 0.48, 0.16, 0.73, 0.11, 0.39, 0.52, 0.43,
                  0.59, 0.74, 0.96, 0.28, 0.65, 0.7, 0.29, 0.0, 0.97, 0.3, 0.31, 0.89, 0.59,
                  0.47, 0.77, 0.03, 0.71, 0.37, 0.09, 0.66, 0.93, 0.21, 0.63, 0.3, 0.74, 0.72,
                  0.22])
    y = np.array([0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1,
                  0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0], dtype=float)
    w = np.array([2, 1, 1, 1, 2, 2, 1, 3, 2, 3, 3, 3, 1, 1, 3, 2, 3, 3, 3, 1, 1, 3, 2, 2, 1, 2,
                  1, 3, 3, 3, 1, 2, 1, 2, 3, 1, 1, 2, 2, 1], dtype=float)
    m = IsotonicMap.fit(x, y, w)
    got = m(np.array([-1, 0.05, 0.33, 0.5, 0.77, 0.9, 2.0]))
    want = [0.0, 0.0, 0.3076923076923077, 0.5242165242165242, 0.8, 0.85, 1.0]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert m.xs.size == 10  # first and last knot of each constant block, as sklearn keeps


def test_overconfident_scores_are_calibrated_back() -> None:
    rng = np.random.default_rng(2)
    ref = binary_sample(rng, 20_000)
    st = _binary_state(ref.scores["overconfident"], ref.y)
    cal = Calibration.fit("binary", st.labelled_scores)
    assert cal is not None and cal.rows == 20_000
    s = np.array([0.05, 0.2, 0.5, 0.8, 0.95])
    truth = 1 / (1 + np.exp(-np.log(s / (1 - s)) / 2.5))  # invert the x 2.5 on the logit
    np.testing.assert_allclose(cal.maps["1"](s), truth, atol=0.05)


# ------------------------------------------------------------------ face value
def test_face_value_matches_exact_formulas_within_binning_bound() -> None:
    p = np.random.default_rng(0).beta(2, 2, 5_000)
    d = p >= 0.5
    st = _binary_state(p)
    e = binary_estimates(st.scores.get("+"), st.scores.get("-"))
    bound = binning_bound(st.scores.get("+"), st.scores.get("-"))
    assert bound < 0.004
    tp, fp, fn = p[d].sum(), (1 - p[d]).sum(), p[~d].sum()
    exact = {
        "accuracy": np.mean(np.maximum(p, 1 - p)),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }
    for m, want in exact.items():
        got = e[m].value
        assert got is not None and abs(got - want) <= bound, m
    # Poisson-binomial standard error of the realised accuracy
    assert e["accuracy"].se == pytest.approx(np.sqrt(np.sum(p * (1 - p))) / p.size, rel=1e-3)


def test_model_decision_overrides_threshold() -> None:
    st = _binary_state(np.array([0.4, 0.4]), decisions=[1, 1])
    e = window_estimates("binary", st.scores, None)
    assert e["accuracy"].value == pytest.approx(0.4, abs=2e-3)
    assert e["recall"].value == 1.0  # nothing predicted negative -> E[FN] = 0


def test_bins_are_mergeable_and_serialised() -> None:
    p = np.random.default_rng(1).random(1_000)
    y = (p > 0.3).astype(int)
    whole = _binary_state(p, y)
    a, b = _binary_state(p[:400], y[:400]), _binary_state(p[400:], y[400:], tag="")
    b = WindowState("binary", 1, sample_capacity=100_000)
    evs = [{"request_id": str(i), "probability": float(v)} for i, v in enumerate(p)]
    b.add_predictions(evs[400:])
    b.add_labelled(list(zip(evs[400:], y[400:].tolist(), strict=True)))
    merged = WindowState.from_bytes(b.merge(a).to_bytes())
    assert merged.scores == whole.scores and merged.labelled_scores == whole.labelled_scores
    assert merged.to_bytes() == whole.to_bytes()
    assert bin_index(np.array([0.0, 1.0])).tolist() == [0, 2047]


# ------------------------------------------------------------------ under covariate shift
@pytest.mark.parametrize("model", ["calibrated", "overconfident"])
def test_estimate_follows_realised_accuracy_under_shift(model: str) -> None:
    rng = np.random.default_rng(7)
    ref = binary_sample(rng, 5_000)
    profile = ReferenceProfile.from_state(_binary_state(ref.scores[model], ref.y, tag="ref"))
    profile = ReferenceProfile.from_bytes(profile.to_bytes())  # the calibration travels
    for shift in SHIFTS:
        d = binary_sample(rng, 20_000, shift)
        st = _binary_state(d.scores[model], d.y)
        rows = _rows(st, profile.calibration)
        real = performance_metrics(st)
        assert rows["estimate_calibrated"] == 1.0
        for m in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            assert rows[f"expected_{m}"] == pytest.approx(real[m], abs=0.015), (shift, m)
        face = _rows(st, None)
        assert face["estimate_calibrated"] == 0.0
        if model == "overconfident":  # the scores at face value are far off
            assert face["expected_accuracy"] - real["accuracy"] > 0.08  # type: ignore[operator]


def test_too_few_labelled_reference_rows_say_uncalibrated() -> None:
    rng = np.random.default_rng(3)
    ref = binary_sample(rng, 200)
    profile = ReferenceProfile.from_state(_binary_state(ref.scores["overconfident"], ref.y))
    assert profile.calibration is not None and profile.calibration.rows == 200
    d = binary_sample(rng, 2_000)
    rows = _rows(_binary_state(d.scores["overconfident"]), profile.calibration)
    assert rows["estimate_calibrated"] == 0.0
    assert rows["expected_accuracy"] == pytest.approx(
        np.mean(np.maximum(d.scores["overconfident"], 1 - d.scores["overconfident"])), abs=2e-3)
    assert _rows(_binary_state(d.scores["overconfident"]), profile.calibration,
                 min_rows=100)["estimate_calibrated"] == 1.0


# ------------------------------------------------------------------ the band
def _coverage(seeds: int, z: float, metric: str, n: int) -> float:
    """Share of windows whose realised value lies in the band; fresh reference per seed."""
    hits = 0
    for seed in range(seeds):
        rng = np.random.default_rng(1_000 + seed)
        ref = binary_sample(rng, 5_000)
        bins = ScoreBins()
        s, y = ref.scores["overconfident"], ref.y
        for side, sel in (("+", s >= 0.5), ("-", s < 0.5)):
            bins.add(f"{side}\x1f1", s[sel & (y == 1)])
            bins.add(f"{side}\x1f0", s[sel & (y == 0)])
        cal = Calibration.fit("binary", bins)
        assert cal is not None
        d = binary_sample(rng, n, SHIFTS[seed % len(SHIFTS)])
        s, y = d.scores["overconfident"], d.y
        win = ScoreBins()
        win.add("+", s[s >= 0.5])
        win.add("-", s[s < 0.5])
        e = window_estimates("binary", win, cal)[metric]
        assert e.value is not None and e.se is not None
        pred = s >= 0.5
        tp, fn = np.sum(pred & (y == 1)), np.sum(~pred & (y == 1))
        real = {"accuracy": np.mean(pred == (y == 1)), "f1": 2 * tp / (pred.sum() + tp + fn)}
        hits += abs(real[metric] - e.value) <= z * e.se
    return hits / seeds


@pytest.mark.parametrize(("metric", "z", "nominal"), [("accuracy", 1.96, 0.95),
                                                      ("accuracy", 1.0, 0.683),
                                                      ("f1", 1.96, 0.95)])
def test_band_covers_realised_value_at_nominal_rate(metric: str, z: float, nominal: float) -> None:
    """400 seeds: the binomial s.e. of the share is ~0.011 at 95%, ~0.023 at 68%."""
    share = _coverage(400, z, metric, 2_000)
    tol = 3 * np.sqrt(nominal * (1 - nominal) / 400) + 0.01  # + calibration error of the fit
    assert abs(share - nominal) <= tol, share


# ------------------------------------------------------------------ reconciliation
def test_gap_beyond_band_flags_concept_drift_only() -> None:
    rng = np.random.default_rng(9)
    ref = binary_sample(rng, 5_000)
    cal = Calibration.fit("binary", _binary_state(ref.scores["calibrated"], ref.y,
                                                  tag="r").labelled_scores)
    same = binary_sample(rng, 5_000, 0.6)
    rows = _rows(_binary_state(same.scores["calibrated"], same.y), cal)
    assert rows["accuracy_gap_beyond_band"] == 0.0
    assert abs(rows["accuracy_gap"]) < 0.02  # type: ignore[arg-type]
    drifted = binary_sample(rng, 5_000, 0.6, flip=0.15)  # p(y|x) changed
    rows = _rows(_binary_state(drifted.scores["calibrated"], drifted.y), cal)
    assert rows["accuracy_gap_beyond_band"] == 1.0
    assert rows["accuracy_gap"] < -0.05  # type: ignore[operator]
    # the gap compares the labelled rows only: half the window labelled
    half = _binary_state(drifted.scores["calibrated"], None)
    evs = [{"request_id": str(i), "probability": float(p)}
           for i, p in enumerate(drifted.scores["calibrated"][:2_500])]
    half.add_labelled(list(zip(evs, drifted.y[:2_500].tolist(), strict=True)))
    assert _rows(half, cal)["accuracy_gap_beyond_band"] == 1.0


# ------------------------------------------------------------------ multiclass
def _mc_state(d: Any, labelled: bool, tag: str = "") -> WindowState:
    st = WindowState("multiclass", "a", sample_capacity=100_000)
    names = ["a", "b", "c"]
    evs: list[Mapping[str, Any]] = [
        {"request_id": f"{tag}{i}", "scores": dict(zip(names, row.tolist(), strict=True))}
        for i, row in enumerate(d.scores)
    ]
    st.add_predictions(evs)
    if labelled:
        st.add_labelled([(e, names[k]) for e, k in zip(evs, d.y.tolist(), strict=True)])
    return st


def test_multiclass_overconfident_estimate_follows_realised() -> None:
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.from_state(_mc_state(multiclass_sample(rng, 6_000), True, "r"))
    profile = ReferenceProfile.from_bytes(profile.to_bytes())
    assert profile.calibration is not None and {"a\x1f+", "a\x1f-", "c"} <= set(
        profile.calibration.maps)
    for shift in (0.0, 0.5, 1.0):
        st = _mc_state(multiclass_sample(rng, 20_000, shift), True)
        rows, real = _rows(st, profile.calibration), performance_metrics(st)
        assert rows["estimate_calibrated"] == 1.0
        assert rows["expected_accuracy"] == pytest.approx(real["accuracy"], abs=0.015), shift
        assert rows["expected_f1"] == pytest.approx(real["f1"], abs=0.02), shift
        assert rows["expected_accuracy_lower"] < rows["expected_accuracy"]  # type: ignore[operator]
        assert rows["accuracy_gap_beyond_band"] == 0.0
        face = _rows(st, None)
        assert face["expected_accuracy"] - real["accuracy"] > 0.05  # type: ignore[operator]


def test_multiclass_face_value_is_mean_score_of_predicted_class() -> None:
    m = WindowState("multiclass", "a")
    m.add_predictions(
        [
            {"request_id": "1", "scores": {"a": 0.7, "b": 0.3}},
            {"request_id": "2", "prediction": "b", "scores": {"a": 0.7, "b": 0.3}},
            {"request_id": "3", "prediction": "c"},
        ]
    )
    e = window_estimates("multiclass", m.scores, None)
    assert e["accuracy"].value == pytest.approx(0.5, abs=3e-3) and e["accuracy"].n == 2


def test_regression_and_empty_give_no_rows() -> None:
    assert _rows(WindowState("regression"), None) == {}
    assert _rows(WindowState("binary"), None) == {}


def test_one_class_reference_and_version_1_profiles_are_uncalibrated() -> None:
    from stream.metrics.sampling import pack, unpack

    p = np.random.default_rng(0).random(1_000)
    one_class = ReferenceProfile.from_state(_binary_state(p, np.ones(1_000, dtype=int)))
    assert one_class.calibration is not None and not one_class.calibration.maps
    assert _rows(_binary_state(p), one_class.calibration)["estimate_calibrated"] == 0.0
    labelled = ReferenceProfile.from_state(_binary_state(p, (p > 0.5).astype(int)))
    meta, arrays = unpack(labelled.to_bytes())
    meta["v"] = 1
    del meta["calibration"]
    old = ReferenceProfile.from_bytes(pack(meta, arrays))
    assert old.calibration is None and old.columns == labelled.columns
