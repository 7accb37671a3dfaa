"""Exact sums, capped category counts, column and scalar stats."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.metrics.accumulators import (
    OTHER_CATEGORY,
    CategoryCounts,
    ColumnStats,
    ExactSum,
    ScalarStats,
    two_product_square,
)

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(finite, max_size=40), cut=st.integers(0, 40))
def test_exact_sum_is_correctly_rounded_and_merges_exactly(values: list[float], cut: int) -> None:
    whole = ExactSum()
    whole.add(np.array(values, dtype=np.float64))
    a, b = ExactSum(), ExactSum()
    a.add(np.array(values[:cut], dtype=np.float64))
    b.add(np.array(values[cut:], dtype=np.float64))
    assert b.merge(a) == whole == a.merge(b)
    exact = sum((Fraction(v) for v in values), Fraction(0))
    assert whole.fraction() == exact
    try:  # the exact sum correctly rounded (fsum overflows on intermediate sums, which
        # made this expectation wrong near the largest double)
        expected = float(exact)
    except OverflowError:
        expected = math.inf if exact > 0 else -math.inf
    assert whole.value() == expected
    assert ExactSum.from_json(whole.to_json()) == whole


@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=300))
def test_exact_sum_small_and_array_paths_agree(values: list[float]) -> None:
    """Short arrays are summed in a Python loop, long ones with numpy: the same integer."""
    x = np.array(values, dtype=np.float64)
    by_loop, by_numpy = ExactSum(), ExactSum()
    for start in range(0, x.size, 10):  # chunks under the loop's threshold
        by_loop.add(x[start : start + 10])
    by_numpy.add(np.tile(x, 1 + 100 // x.size)[: max(x.size, 100)])  # over it
    repeats = np.tile(x, 1 + 100 // x.size)[: max(x.size, 100)]
    assert by_numpy.fraction() == sum((Fraction(v) for v in repeats.tolist()), Fraction(0))
    assert by_loop.fraction() == sum((Fraction(v) for v in values), Fraction(0))
    edge = np.array([5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0])
    small, large = ExactSum(), ExactSum()
    small.add(edge)
    large.add(np.tile(edge, 20))
    assert large.total == 20 * small.total
    assert small.fraction() == sum((Fraction(v) for v in edge.tolist()), Fraction(0))


def test_exact_sum_cancellation_and_nonfinite() -> None:
    s = ExactSum()
    s.add(np.array([1e308, 1e308, -1e308, 1.0, -1e308]))
    assert s.value() == 1.0
    s.add(np.array([np.inf]))
    assert s.value() == math.inf and s.fraction() is None
    s.add(np.array([-np.inf]))
    assert math.isnan(s.value())
    t = ExactSum()
    t.add(np.array([np.nan, 1.0]))
    assert math.isnan(t.value())
    big = ExactSum()
    big.add(np.array([1.7e308, 1.7e308]))
    assert big.value() == math.inf


def test_two_product_square_is_exact() -> None:
    x = np.array([0.1, 1e8 + 0.3, -3.7e150, 5e-100, 123456789.123])
    hi, lo = two_product_square(x)
    for v, h, low in zip(x.tolist(), hi.tolist(), lo.tolist(), strict=True):
        assert Fraction(h) + Fraction(low) == Fraction(v) ** 2


@settings(max_examples=80, deadline=None)
@given(
    cats=st.lists(st.sampled_from("abcdefg"), max_size=60),
    cut=st.integers(0, 60),
)
def test_category_counts_merge_equals_one_pass_below_cap(cats: list[str], cut: int) -> None:
    one = CategoryCounts(10)
    one.add({c: cats.count(c) for c in set(cats)})
    a, b = CategoryCounts(10), CategoryCounts(10)
    a.add({c: cats[:cut].count(c) for c in set(cats[:cut])})
    b.add({c: cats[cut:].count(c) for c in set(cats[cut:])})
    assert a.merge(b) == one == b.merge(a)
    assert one.total == len(cats)


def test_category_counts_fold_into_other_past_cap() -> None:
    c = CategoryCounts(2)
    c.add({"a": 5, "b": 3, "c": 3, "d": 1})
    assert c.counts == {"a": 5, "b": 3, OTHER_CATEGORY: 4}
    c.add({"e": 10})
    assert c.counts == {"e": 10, "a": 5, OTHER_CATEGORY: 7}
    assert c.total == 22 and c.folded == 7


def test_column_and_scalar_stats_merge() -> None:
    a, b = ColumnStats(5), ColumnStats(5)
    a.add(np.array([1.0, 5.0]), 1, {"x": 2}, 0)
    b.add(np.array([-2.0]), 0, {"x": 1, "y": 1}, 3)
    m = a.merge(b)
    assert (m.n_numeric, m.n_nonfinite, m.n_category, m.n_other) == (3, 1, 4, 3)
    assert (m.min, m.max) == (-2.0, 5.0)
    assert m.categories.counts == {"x": 3, "y": 1}
    assert ColumnStats.from_json(m.to_json()) == m
    s, t = ScalarStats(), ScalarStats()
    s.add(np.array([1.0, 2.0]))
    t.add(np.array([6.0]))
    u = s.merge(t)
    assert (u.n, u.mean(), u.min, u.max) == (3, 3.0, 1.0, 6.0)
    assert ScalarStats.from_json(u.to_json()) == u
    assert ScalarStats().mean() is None
