"""The ``distribution`` rows: a window's shares on the reference's bins (the report's plots)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stream.config import MetricsSettings, ModelSettings
from stream.metrics.distribution import OTHER, bin_shares, decile_edges, distribution_rows
from stream.metrics.evaluate import evaluate_window
from stream.metrics.reference import ReferenceProfile
from stream.metrics.window import WindowState
from tests.unit.metrics.test_window import KEY, _binary_events


def test_bins_are_the_reference_deciles_and_shares_match_numpy() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=2000), rng.normal(0.5, size=700)
    edges = decile_edges(ref)
    assert edges == pytest.approx(np.quantile(ref, np.linspace(0.1, 0.9, 9)))
    counts, _ = np.histogram(cur, np.concatenate([[-np.inf], edges, [np.inf]]))
    # numpy's bins are [a, b) except the last; no value sits on an edge here
    assert bin_shares(cur, edges) == pytest.approx(counts / cur.size)
    assert bin_shares(ref, edges) == pytest.approx(np.full(10, 0.1), abs=1e-3)


def test_rows_of_a_shifted_window() -> None:
    settings, model = MetricsSettings(min_sample_size=30), ModelSettings()
    ref_events = _binary_events(1000, seed=1)
    reference = ReferenceProfile.from_events(ref_events, model)
    cur = _binary_events(400, seed=2, shift=1.0, start=10_000)
    state = WindowState.for_model(model, settings)
    state.add_predictions(cur)
    res = evaluate_window(state, reference, settings, model, KEY, revision=0, computed_at=0)
    rows = {(r.feature, r.metric): r.value for r in res.metrics if r.family == "distribution"}
    x = np.array([e["features"]["x"] for e in cur])
    edges = decile_edges(reference.columns["x"].sample)
    want = bin_shares(x, edges)
    assert [rows["x", f"bin_{i:02d}"] for i in range(1, 11)] == pytest.approx(want)
    assert [rows["x", f"edge_{i:02d}"] for i in range(1, 10)] == pytest.approx(edges)
    assert sum(rows["x", f"reference_bin_{i:02d}"] for i in range(1, 11)) == pytest.approx(1)
    assert rows["x", "bin_10"] > 0.3  # shifted by one sd: a third above the top decile
    c = [e["features"]["c"] for e in cur]
    assert rows["c", "category:a"] == pytest.approx(c.count("a") / len(c))
    assert rows["c", f"category:{OTHER}"] == 0.0
    # Only the whole traffic gets them (the report's view), and only with a reference.
    segment = evaluate_window(state, reference, settings, model, replace(KEY, segment="x=1"),
                              revision=0, computed_at=0)
    assert not [r for r in segment.metrics if r.family == "distribution"]
    alone = evaluate_window(state, None, settings, model, KEY, revision=0, computed_at=0)
    assert not [r for r in alone.metrics if r.family == "distribution"]
    off = MetricsSettings(min_sample_size=30, distribution_rows=False)
    assert not [r for r in evaluate_window(state, reference, off, model, KEY, revision=0,
                                           computed_at=0).metrics if r.family == "distribution"]


def test_categories_beyond_the_top_go_to_other_and_empty_columns_have_no_rows() -> None:
    counts = {f"k{i:02d}": 20 - i for i in range(12)}
    reference = ReferenceProfile(100, {"c": categorical_column(counts)}, {}, 0)
    rows = list(distribution_rows(reference, {}, {"c": {"k00": 1, "k11": 1, "new": 2}}))
    got = {m: v for _, m, v, _ in rows}
    assert got["category:k00"] == 0.25 and got[f"category:{OTHER}"] == 0.75
    assert got[f"reference_category:{OTHER}"] == pytest.approx((10 + 9) / sum(counts.values()))
    assert list(distribution_rows(reference, {}, {})) == []


def categorical_column(counts: dict[str, int]) -> object:
    from stream.metrics.reference import ColumnProfile

    return ColumnProfile("categorical", sum(counts.values()), counts=counts)
