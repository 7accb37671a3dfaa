"""WindowState: merge == one pass (any split and order), round trips, bounded size, evaluation."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from stream.config import MetricsSettings, ModelSettings
from stream.errors import MetricsError
from stream.metrics.drift import column_drift
from stream.metrics.evaluate import evaluate_window
from stream.metrics.reference import ReferenceProfile
from stream.metrics.values import class_key
from stream.metrics.window import LATENCY_COLUMN, Task, WindowState
from stream.results import METRIC_FAMILIES, PREDICTION_COLUMN, WindowKey

KEY = WindowKey("m1", "v1", "all", 1_000, 301_000)

feature_value = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["a", "b", "c", "zz"]),
    st.booleans(),
    st.just([1, 2]),
)


@st.composite
def events(draw: Any, task: str = "binary") -> list[dict[str, Any]]:
    n = draw(st.integers(0, 30))
    out = []
    for i in range(n):
        feats = draw(st.dictionaries(st.sampled_from(["x", "y", "c"]), feature_value, max_size=3))
        e: dict[str, Any] = {"request_id": f"r{i}", "features": feats}
        if task == "binary":
            p = draw(st.one_of(st.none(), st.floats(0, 1)))
            if p is not None:
                e["probability"] = p
            e["prediction"] = draw(st.one_of(st.none(), st.sampled_from([0, 1, True, "1"])))
        elif task == "multiclass":
            e["prediction"] = draw(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])))
            if draw(st.booleans()):
                e["scores"] = {"a": 0.5, "b": 0.3, "c": 0.2}
        else:
            e["prediction"] = draw(st.one_of(st.none(), st.floats(-1e6, 1e6)))
        if draw(st.booleans()):
            e["latency_ms"] = draw(st.floats(0, 1e4))
        out.append(e)
    return out


def _label(task: str, i: int) -> Any:
    if task == "binary":
        return [0, 1, None, "1"][i % 4]
    if task == "multiclass":
        return ["a", "b", "c", None][i % 4]
    return [0.0, 1.5, -2.0, None, 1e5][i % 5]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@settings(max_examples=40, deadline=None)
@given(data=st.data(), capacity=st.integers(1, 12), n_parts=st.integers(1, 4))
def test_merge_equals_one_pass(task: Task, data: Any, capacity: int, n_parts: int) -> None:
    evs = data.draw(events(task))

    def make() -> WindowState:
        return WindowState(task, 1 if task != "multiclass" else "a", sample_capacity=capacity)

    cuts = sorted(
        data.draw(st.lists(st.integers(0, len(evs)), min_size=n_parts - 1, max_size=n_parts - 1))
    )
    bounds = [0, *cuts, len(evs)]
    one = make()
    one.add_predictions(evs)
    pairs = [(e, _label(task, i)) for i, e in enumerate(evs) if i % 3 == 0]
    one.add_labelled(pairs)
    parts = []
    for a, b in itertools.pairwise(bounds):
        s = make()
        size = data.draw(st.integers(1, 5))
        for start in range(a, b, size):
            s.add_predictions(evs[start : min(b, start + size)])
        s.add_labelled([(e, lab) for e, lab in pairs if a <= int(e["request_id"][1:]) < b])
        parts.append(s)
    random.Random(data.draw(st.integers(0, 1000))).shuffle(parts)
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p) if len(parts) % 2 else p.merge(merged)
    assert merged.to_bytes() == one.to_bytes()
    assert merged.n_predictions == len(evs)
    assert WindowState.from_bytes(one.to_bytes()) == one


def test_state_size_stops_growing_past_capacity() -> None:
    rng = np.random.default_rng(1)
    st_ = WindowState("binary", 1, sample_capacity=200)
    sizes = []
    for b in range(12):
        evs = [
            {
                "request_id": f"{b}-{i}",
                "features": {f"f{k}": float(v) for k, v in enumerate(row)} | {"c": f"cat{i % 7}"},
                "probability": float(row[0] % 1),
                "latency_ms": 3.0,
            }
            for i, row in enumerate(rng.normal(size=(100, 5)))
        ]
        st_.add_predictions(evs)
        st_.add_labelled([(e, i % 2) for i, e in enumerate(evs)])
        # the score histograms (estimate) grow by 10 bytes per newly used bin, up to their
        # fixed number of bins; everything else stops growing at capacity
        hist = sum(int(np.count_nonzero(c)) for b_ in (st_.scores, st_.labelled_scores)
                   for c in b_.groups.values())
        sizes.append(len(st_.to_bytes()) - 10 * hist)
    assert st_.n_predictions == 1200 and st_.n_labelled == 1200
    assert len(st_.sample) == 200 and len(st_.label_sample) == 200
    assert max(sizes[3:]) - min(sizes[3:]) < 64  # only integer widths in the JSON header move
    assert sizes[0] < sizes[2]


def test_value_types_are_classified() -> None:
    s = WindowState("regression")
    s.add_predictions(
        [
            {"features": {"x": 1, "c": "a"}, "prediction": 1.0},
            {"features": {"x": "oops", "c": True}, "prediction": None},
            {"features": {"x": math.inf, "c": 3}, "prediction": 2.0},
            {"features": {"x": math.nan, "c": [1]}},
            {"features": {"x": 10**400}},
        ]
    )
    x, c = s.columns["x"], s.columns["c"]
    assert (x.n_numeric, x.n_category, x.n_nonfinite, x.n_other) == (1, 1, 2, 0)
    assert (c.n_numeric, c.n_category, c.n_other) == (1, 2, 1)
    assert c.categories.counts == {"a": 1, "true": 1}
    assert s.columns[PREDICTION_COLUMN].n_numeric == 2
    assert s.sample.column("x").tolist() == [1.0]


def test_class_key_normalisation() -> None:
    assert [class_key(v) for v in (1, 1.0, "1", True, 2.5, None, math.nan, [1])] == [
        "1",
        "1",
        "1",
        "true",
        "2.5",
        None,
        None,
        None,
    ]


def test_incompatible_states_do_not_merge() -> None:
    with pytest.raises(MetricsError):
        WindowState("binary").merge(WindowState("regression"))
    with pytest.raises(MetricsError):
        WindowState("binary", sample_capacity=10).merge(WindowState("binary"))
    with pytest.raises(MetricsError):
        WindowState("ranking")  # type: ignore[arg-type]
    with pytest.raises(MetricsError):
        WindowState.from_bytes(b"nope")


# ---------------------------------------------------------------------------- evaluation
def _binary_events(n: int, seed: int, shift: float = 0.0, start: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = float(rng.random())
        out.append(
            {
                "request_id": f"r{start + i}",
                "features": {
                    "x": float(rng.normal(shift)),
                    "c": str(rng.choice(["a", "b", "c"])),
                    "k": None if i % 5 == 0 else float(i % 50),
                },
                "probability": p,
                "prediction": int(p >= 0.5),
                "latency_ms": float(i % 100),
            }
        )
    return out


def _rows(res: Any) -> dict[tuple[str, str, str], Any]:
    return {(r.family, r.metric, r.feature): r for r in res.metrics}


def test_evaluate_known_answers_against_scipy() -> None:
    settings_ = MetricsSettings(correction="none", min_sample_size=30)
    model = ModelSettings()
    ref_events = _binary_events(600, seed=1)
    reference = ReferenceProfile.from_events(ref_events, model)
    cur = _binary_events(300, seed=2, shift=0.4, start=10_000)
    state = WindowState.for_model(model, settings_)
    state.add_predictions(cur)
    labels = [int(i % 3 == 0) for i in range(100)]
    state.add_labelled(list(zip(cur[:100], labels, strict=True)))
    res = evaluate_window(state, reference, settings_, model, KEY, revision=3, computed_at=99)

    drift = {r.feature: r for r in res.drift}
    assert set(drift) == {"x", "c", "k", PREDICTION_COLUMN}
    ref_x = np.array([e["features"]["x"] for e in ref_events])
    cur_x = np.array([e["features"]["x"] for e in cur])
    assert drift["x"].method == "ks"
    assert drift["x"].p_value == pytest.approx(ks_2samp(ref_x, cur_x).pvalue, abs=1e-9)
    assert drift["x"].drifted is True
    direct = column_drift("c", _counts(ref_events, "c"), _counts(cur, "c"))
    assert drift["c"].statistic == pytest.approx(direct.statistic, abs=1e-12)
    for r in res.drift:
        assert (r.model_id, r.segment, r.window_start, r.revision, r.computed_at) == (
            "m1",
            "all",
            1_000,
            3,
            99,
        )

    rows = _rows(res)
    assert {r.family for r in res.metrics} <= set(METRIC_FAMILIES)
    assert rows["quality", "row_count", ""].value == 300
    assert rows["quality", "null_share", "k"].value == pytest.approx(60 / 300, abs=1e-12)
    assert rows["quality", "null_share", "x"].value == 0.0
    ref_max = max(e["features"]["x"] for e in ref_events)
    ref_min = min(e["features"]["x"] for e in ref_events)
    oor = np.mean([not ref_min <= v <= ref_max for v in cur_x])
    assert rows["quality", "out_of_range_share", "x"].value == pytest.approx(oor, abs=1e-12)
    assert rows["quality", "unseen_category_share", "c"].value == 0.0
    lat = np.array([e["latency_ms"] for e in cur])
    assert rows["service", "latency_p90", ""].value == pytest.approx(
        np.percentile(lat, 90), abs=1e-9
    )
    assert rows["service", "latency_mean", ""].value == pytest.approx(lat.mean(), abs=1e-9)
    assert rows["service", "count", ""].value == 300

    preds = np.array([e["prediction"] for e in cur[:100]])
    y = np.array(labels)
    acc = rows["performance", "accuracy", ""]
    assert acc.value == pytest.approx(np.mean(preds == y), abs=1e-12)
    assert (acc.sample_size, acc.labelled_count, acc.coverage) == (100, 100, pytest.approx(1 / 3))
    assert rows["performance", "tp", ""].value == np.sum((preds == 1) & (y == 1))
    p = np.array([e["probability"] for e in cur])
    assert rows["estimate", "expected_accuracy", ""].value == pytest.approx(
        np.mean(np.maximum(p, 1 - p)), abs=0.004  # binned scores: within the binning bound
    )
    dataset = rows["drift", "dataset_drift_share", ""]
    verdicts = [drift[f].drifted for f in ("x", "c", "k")]
    assert dataset.value == pytest.approx(sum(bool(v) for v in verdicts) / 3)


def _counts(evs: list[dict[str, Any]], name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in evs:
        v = e["features"][name]
        out[v] = out.get(v, 0) + 1
    return out


def test_evaluate_without_reference_or_labels() -> None:
    settings_ = MetricsSettings()
    model = ModelSettings()
    state = WindowState.for_model(model, settings_)
    state.add_predictions(_binary_events(50, seed=3))
    res = evaluate_window(state, None, settings_, model, KEY, 1, 2)
    fams = {r.family for r in res.metrics}
    assert res.drift == ()
    assert fams == {"quality", "service", "estimate"}
    assert all(r.feature == "" for r in res.metrics if r.family in ("service", "estimate"))


def test_evaluate_empty_window_and_small_sample() -> None:
    settings_ = MetricsSettings(min_sample_size=30)
    model = ModelSettings()
    reference = ReferenceProfile.from_events(_binary_events(200, seed=4), model)
    empty = WindowState.for_model(model, settings_)
    res = evaluate_window(empty, reference, settings_, model, KEY, 1, 2)
    assert all(r.drifted is None for r in res.drift)
    rows = _rows(res)
    assert rows["quality", "null_share", "x"].value is None
    assert rows["drift", "dataset_drift", ""].value is None
    small = WindowState.for_model(model, settings_)
    small.add_predictions(_binary_events(10, seed=5))
    res = evaluate_window(small, reference, settings_, model, KEY, 1, 2)
    assert {r.drifted for r in res.drift} == {None}
    assert _rows(res)["quality", "row_count", ""].value == 10


def test_evaluate_uses_the_sample_past_capacity() -> None:
    settings_ = MetricsSettings(sample_capacity=100, correction="bh")
    model = ModelSettings()
    reference = ReferenceProfile.from_events(_binary_events(500, seed=6), model)
    state = WindowState.for_model(model, settings_)
    state.add_predictions(_binary_events(1000, seed=7, start=50_000))
    res = evaluate_window(state, reference, settings_, model, KEY, 1, 2)
    x = next(r for r in res.drift if r.feature == "x")
    assert x.current_size == 100
    assert x.p_value is not None and x.p_value_adjusted is not None
    assert x.p_value_adjusted >= x.p_value
    assert _rows(res)["quality", "row_count", ""].value == 1000


def test_regression_and_multiclass_windows() -> None:
    settings_ = MetricsSettings()
    reg = ModelSettings(task="regression")
    s = WindowState.for_model(reg, settings_)
    evs = [{"request_id": str(i), "features": {}, "prediction": float(i)} for i in range(10)]
    s.add_predictions(evs)
    s.add_labelled([(e, {"label": float(i) + 1.0}) for i, e in enumerate(evs)])
    rows = _rows(evaluate_window(s, None, settings_, reg, KEY, 1, 2))
    assert rows["performance", "mae", ""].value == 1.0
    assert rows["performance", "mean_error", ""].value == -1.0
    assert ("estimate", "expected_accuracy", "") not in rows

    mc = ModelSettings(task="multiclass", positive_label="a")
    m = WindowState.for_model(mc, settings_)
    evs2: list[Mapping[str, Any]] = [
        {"request_id": str(i), "features": {}, "scores": {"a": 0.6, "b": 0.4}} for i in range(4)
    ]
    m.add_predictions(evs2)
    m.add_labelled([(e, lab) for e, lab in zip(evs2, ["a", "a", "b", "a"], strict=True)])
    rows = _rows(evaluate_window(m, None, settings_, mc, KEY, 1, 2))
    assert rows["performance", "accuracy", ""].value == 0.75
    assert rows["estimate", "expected_accuracy", ""].value == pytest.approx(0.6, abs=0.004)
    assert rows["performance", "log_loss", ""].value == pytest.approx(
        -(3 * math.log(0.6) + math.log(0.4)) / 4, abs=1e-12
    )
    assert m.sample.column(LATENCY_COLUMN).size == 0


def test_edge_cases_all_null_constant_nonfinite() -> None:
    settings_ = MetricsSettings(min_sample_size=5, correction="none")
    model = ModelSettings()
    ref_evs = [
        {
            "request_id": f"a{i}",
            "features": {"empty": None, "const": 7.0, "x": float(i)},
            "probability": 0.5,
        }
        for i in range(50)
    ]
    reference = ReferenceProfile.from_events(ref_evs, model)
    assert reference.columns["empty"].count == 0
    state = WindowState.for_model(model, settings_)
    state.add_predictions(
        [
            {
                "request_id": f"b{i}",
                "features": {"empty": None, "const": 7.0, "x": [math.nan, math.inf, 1e308][i % 3]},
                "probability": [math.nan, 0.7, 2.0][i % 3],
                "latency_ms": math.nan,
            }
            for i in range(30)
        ]
    )
    res = evaluate_window(state, reference, settings_, model, KEY, 1, 2)
    drift = {r.feature: r for r in res.drift}
    assert drift["empty"].drifted is None and drift["empty"].current_size == 0
    assert drift["const"].drifted is False  # constant vs the same constant
    rows = _rows(res)
    assert rows["quality", "null_share", "empty"].value == 1.0
    assert rows["quality", "null_share", "x"].value == pytest.approx(1 / 3)
    assert rows["quality", "type_error_share", "x"].value == pytest.approx(1 / 3)
    assert rows["quality", "out_of_range_share", "x"].value == 1.0  # 1e308 > max 49
    assert rows["quality", "out_of_range_share", "const"].value == 0.0
    # NaN and out-of-[0, 1] probabilities are not probabilities: one usable row in three
    assert rows["estimate", "expected_accuracy", ""].sample_size == 10
    assert ("service", "latency_p50", "") not in rows  # NaN latencies are missing
    assert rows["service", "count", ""].value == 30


def test_feature_name_flood_is_bounded() -> None:
    s = WindowState("binary", max_columns=3)
    s.add_predictions([{"request_id": "a", "features": {"f1": 1.0, "f2": 2.0}}])
    s.add_predictions([{"request_id": "b", "features": {f"g{i}": 1.0 for i in range(50)}}])
    s.add_predictions([{"request_id": "c", "features": ["not", "a", "mapping"]}])
    assert set(s.columns) == {"f1", "f2", "__prediction__"}
    assert s.dropped_values == 50
    assert s.columns["f1"].non_null == 1 and s.n_predictions == 3
    t = WindowState("binary", max_columns=3)
    t.add_predictions([{"request_id": "d", "features": {"h": 1.0}}])
    merged = s.merge(t)
    assert set(merged.columns) == {"f1", "f2", "__prediction__"}
    assert merged.dropped_values == 51


def test_merged_and_decoded_states_have_every_accumulator_a_new_one_has() -> None:
    """``merge`` and ``from_bytes`` build their state bare and set each accumulator: one
    added to ``__init__`` but not to them would be missing only there."""
    a = WindowState("binary", 1)
    a.add_predictions([{"request_id": "r1", "features": {"x": 1.0, "c": "a"},
                        "prediction": 1, "probability": 0.7, "latency_ms": 3}])
    a.add_labelled([({"request_id": "r1", "prediction": 1, "probability": 0.7}, 1)])
    fresh = set(vars(WindowState("binary", 1)))
    merged = a.merge(WindowState("binary", 1))
    decoded = WindowState.from_bytes(a.to_bytes())
    assert set(vars(merged)) == fresh == set(vars(decoded))
    assert merged == a == decoded
