"""Column pairs, cleaning, and Evidently's binning (get_binned_data)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.errors import MetricsError
from stream.metrics.binning import (
    CategoricalPair,
    NumericPair,
    binned_shares,
    category_counts,
    clean_numeric,
    fill_empty,
    histogram_edges,
)


def test_clean_numeric_drops_none_nan_and_infinities() -> None:
    values = np.array([1.0, None, np.nan, np.inf, -np.inf, 2.5, -0.0], dtype=object)
    assert clean_numeric(values, "x").tolist() == [1.0, 2.5, -0.0]
    assert clean_numeric([], "x").size == 0
    assert clean_numeric(np.array([True, False]), "x").tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("values", "match"),
    [(np.array(["a", "b"]), "must hold numbers"), (np.ones((2, 2)), "one-dimensional")],
)
def test_clean_numeric_refuses_what_is_not_a_numeric_column(values: object, match: str) -> None:
    with pytest.raises(MetricsError, match=match):
        clean_numeric(values, "reference")


def test_categorical_pair_aligns_sorted_labels_and_drops_zero_counts() -> None:
    pair = CategoricalPair.of({"b": 2, "a": 0, "c": 5}, {"d": 1, "b": 0, "a": 0})
    assert pair.labels == ("b", "c", "d")
    assert pair.reference.tolist() == [2, 5, 0]
    assert pair.current.tolist() == [0, 0, 1]
    assert (pair.reference_size, pair.current_size, pair.n_unique()) == (7, 1, 3)


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ({"a": -1}, "whole number >= 0"),
        ({"a": 1.5}, "whole number >= 0"),
        ({"a": True}, "whole number >= 0"),
        ({"a": float("nan")}, "whole number >= 0"),
        ({"a": float("inf")}, "whole number >= 0"),
        ({"a": "5"}, "whole number >= 0"),
        ({1: 3}, "must be strings"),
    ],
)
def test_categorical_pair_refuses_bad_counts(counts: dict[object, object], match: str) -> None:
    with pytest.raises(MetricsError, match=match):
        CategoricalPair.of(counts, {"a": 1})  # type: ignore[arg-type]


def test_categorical_pair_accepts_numpy_and_integral_float_counts() -> None:
    pair = CategoricalPair.of({"a": np.int64(3), "b": 2.0}, {"a": np.uint8(1)})  # type: ignore[dict-item]
    assert pair.reference.tolist() == [3, 2] and pair.current.tolist() == [1, 0]


def test_numeric_pair_counts_and_codes() -> None:
    pair = NumericPair.of(np.array([3.0, 1.0, 3.0]), np.array([2.0, 3.0]))
    ref_codes, cur_codes, n_values = pair.codes()
    assert (ref_codes.tolist(), cur_codes.tolist(), n_values) == ([2, 0, 2], [1, 2], 3)
    ref, cur = category_counts(pair)
    assert (ref.tolist(), cur.tolist()) == ([1, 0, 2], [0, 1, 1])
    assert pair.n_unique() == 3


def test_huge_values_are_rescaled_by_an_exact_power_of_two() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=50), rng.normal(size=40)
    big = NumericPair.of(np.ldexp(ref, 996), np.ldexp(cur, 996))  # about 1e300
    assert big.log2_scale % 2 == 0 and big.log2_scale > 996
    assert np.array_equal(np.ldexp(big.reference, big.log2_scale), np.ldexp(ref, 996))
    assert float(np.max(np.abs(big.reference))) < 1.0
    small = NumericPair.of(ref, cur)
    assert small.log2_scale == 0 and small.reference is ref


def test_fill_empty_follows_evidently() -> None:
    assert fill_empty(np.array([0.5, 0.5, 0.0])).tolist() == [0.5, 0.5, 0.0001]
    tiny = fill_empty(np.array([0.99995, 0.00005, 0.0]))
    assert tiny[2] == pytest.approx(0.00005 / 1e6, rel=1e-12)
    untouched = np.array([0.2, 0.0])
    fill_empty(untouched)
    assert untouched[1] == 0.0


def test_binned_shares_numeric_uses_sturges_edges_over_both_samples() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=300), rng.normal(2.0, 1.0, size=100)
    r, c = binned_shares(NumericPair.of(ref, cur), fill_zeros=False)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    assert len(r) == len(edges) - 1 == math.ceil(math.log2(400)) + 1
    assert np.array_equal(r, np.histogram(ref, edges)[0] / 300)
    assert np.array_equal(c, np.histogram(cur, edges)[0] / 100)
    assert r.sum() == pytest.approx(1.0) and c.sum() == pytest.approx(1.0)


def test_binned_shares_numeric_with_20_distinct_reference_values_uses_values() -> None:
    ref = np.tile(np.arange(20.0), 5)  # 20 distinct: categories
    cur = np.arange(0.0, 40.0)  # values unseen in the reference still get a category
    r, c = binned_shares(NumericPair.of(ref, cur), fill_zeros=False)
    assert len(r) == len(c) == 40
    assert r[:20].tolist() == [0.05] * 20 and r[20:].sum() == 0
    ref21 = np.tile(np.arange(21.0), 5)  # 21 distinct: histogram
    r21, _ = binned_shares(NumericPair.of(ref21, cur), fill_zeros=False)
    assert len(r21) == len(np.histogram_bin_edges(np.r_[ref21, cur], bins="sturges")) - 1


def test_histogram_edges_none_when_numpy_cannot_bin() -> None:
    assert histogram_edges(np.full(5, 1e17)) is None
    edges = histogram_edges(np.full(5, 3.0))
    assert edges is not None and edges.tolist() == [2.5, 3.5]
