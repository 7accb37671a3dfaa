"""Segments' states read from one batch equal the states of each segment's events alone."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stream.metrics.segments import SegmentRouter, add_by_segment
from stream.metrics.window import WindowState

ODD_VALUES: list[Any] = [None, True, False, "a", "b", 3, -2.5, 1e308 * 10, 10**400, [1], {"x": 1},
                         0.0, -0.0]


def events(n: int, seed: int, odd: bool) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        feats: dict[str, Any] = {"x": rng.random(), "c": rng.choice(["u", "v", None])}
        if odd:
            if rng.random() < 0.5:
                feats["mixed"] = rng.choice(ODD_VALUES)
            if rng.random() < 0.2:
                feats[f"rare{i % 7}"] = rng.choice(ODD_VALUES)
            if rng.random() < 0.1:
                del feats["x"]
        event: dict[str, Any] = {
            "request_id": f"r{seed}-{i}", "features": feats,
            "prediction": rng.choice([0, 1, None]), "probability": rng.choice([rng.random(), None]),
            "latency_ms": rng.choice([rng.random() * 9, None]),
            "segments": {"country": rng.choice(["DE", "FR", None])}}
        out.append(event)
    return out


@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize("max_columns", [1_000, 3])
def test_add_by_segment_equals_add_predictions_per_segment(odd: bool, max_columns: int) -> None:
    def new() -> WindowState:
        return WindowState("binary", 1, sample_capacity=50, max_columns=max_columns)

    batched: dict[str, WindowState] = {}
    alone: dict[str, WindowState] = {}
    router_a, router_b = SegmentRouter(["country"], 8), SegmentRouter(["country"], 8)
    for seed in range(4):  # several batches: states grow, samples fill past capacity
        evs = events(60, seed, odd)
        add_by_segment(batched, router_a, evs, new)
        for seg, group in router_b.group(evs).items():
            alone.setdefault(seg, new()).add_predictions(group)
    assert set(batched) == set(alone) == {"all", "country=DE", "country=FR"}
    for seg in alone:
        assert batched[seg] == alone[seg], seg
        assert batched[seg].to_bytes() == alone[seg].to_bytes(), seg


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_add_labelled_by_segment_equals_add_labelled_per_segment(task: str) -> None:
    from stream.metrics.segments import add_labelled_by_segment

    def new() -> WindowState:
        return WindowState(task, "1" if task != "multiclass" else "a",  # type: ignore[arg-type]
                           sample_capacity=20)

    batched: dict[str, WindowState] = {}
    alone: dict[str, WindowState] = {}
    router_a, router_b = SegmentRouter(["country"], 8), SegmentRouter(["country"], 8)
    for seed in range(4):
        rng = random.Random(seed)
        pairs: list[tuple[dict[str, Any], Any]] = []
        for event in events(50, seed, odd=False):
            if task == "multiclass":
                event["prediction"] = rng.choice(["a", "b", None])
                event["scores"] = {"a": 0.7, "b": 0.3}
                label: Any = rng.choice(["a", "b", None, [1]])
            elif task == "regression":
                event["prediction"] = rng.random()
                label = rng.choice([rng.random(), None, "x", 0.0])
            else:
                label = rng.choice([0, 1, "1", None, True, {"label": 1}])
            if seed == 3 and rng.random() < 0.3:
                event["request_id"] = None  # no id: the sample's fallback priorities
            pairs.append((event, label))
        add_labelled_by_segment(batched, router_a, pairs, new)
        groups: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for pair in pairs:
            for seg in router_b.route(pair[0]):
                groups.setdefault(seg, []).append(pair)
        for seg, group in groups.items():
            alone.setdefault(seg, new()).add_labelled(group)
    assert set(batched) == set(alone)
    for seg in alone:
        assert batched[seg] == alone[seg], seg


def test_binary_read_predictions_fast_path_equals_the_general_rules() -> None:
    from stream.metrics.batch import read_predictions
    from stream.metrics.values import as_probability, class_key

    values: list[Any] = [0, 1, 2, -1, True, False, 0.0, 1.0, 0.3, "1", "a", None, float("nan"),
                         float("inf"), -0.0, 1.5, 10**30]
    events = [{"prediction": a, "probability": b} for a in values for b in values]
    _, probs, decided, keys, _ = read_predictions(events, "binary", "1")
    for e, p_got, d_got, k_got in zip(events, probs, decided, keys, strict=True):
        pred = e["prediction"]
        p = as_probability(e["probability"])
        if p is None and isinstance(pred, float) and not pred.is_integer():
            p, pred = as_probability(pred), None
        key = class_key(pred)
        dec = (key == "1") if key is not None else (p >= 0.5 if p is not None else None)
        assert (p_got, k_got, d_got) == (p, key, dec)
