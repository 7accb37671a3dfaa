"""The bottom-k row sample: exact below capacity, uniform above, merge == one pass bit for bit."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from stream.errors import MetricsError
from stream.metrics.sampling import RowSample, pack, priorities, unpack


def _sample(ids: list[str], values: list[float], capacity: int, seed: int = 0) -> RowSample:
    s = RowSample(capacity)
    s.add(priorities(ids, seed), {"v": np.array(values, dtype=np.float64)})
    return s


def test_priorities_are_deterministic_and_keyed_by_seed() -> None:
    ids = [f"r{i}" for i in range(100)]
    a, b, c = priorities(ids, 1), priorities(ids, 1), priorities(ids, 2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(set(a.tolist())) == 100


def test_priorities_are_keyed_blake2b_of_the_id_as_stored_states_expect() -> None:
    """The priorities decide which rows a stored state kept: they must stay the keyed
    BLAKE2b digests, little-endian, whatever the way they are computed."""
    for seed in (0, 7, -3):
        key = seed.to_bytes(8, "little", signed=True)
        ids: list[object] = ["r1", "Ünïcode", 42]
        want = [int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8, key=key)
                               .digest(), "little") for i in ids]
        assert priorities(ids, seed).tolist() == want


def test_missing_ids_get_reproducible_generator_priorities() -> None:
    a = priorities([None, "", None], 7, offset=3)
    b = priorities([None, "", None], 7, offset=3)
    c = priorities([None, "", None], 7, offset=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_exact_below_capacity() -> None:
    vals = [3.0, 1.0, 2.0, 2.0]
    s = _sample(["a", "b", "c", "d"], vals, capacity=4)
    assert s.exact
    assert sorted(s.column("v").tolist()) == sorted(vals)


def test_size_stops_growing_past_capacity() -> None:
    s = RowSample(50)
    sizes = []
    for batch in range(10):
        ids = [f"{batch}-{i}" for i in range(40)]
        s.add(priorities(ids), {"v": np.arange(40, dtype=np.float64)})
        sizes.append(len(pack({}, {"p": s.prio, "v": s.columns["v"]})))
    assert len(s) == 50 and s.seen == 400 and not s.exact
    assert sizes[2:] == [sizes[2]] * 8  # constant once full


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 60),
    capacity=st.integers(1, 25),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_merge_equals_one_pass_bit_for_bit(
    n: int, capacity: int, cuts: list[int], order: object
) -> None:
    ids = [f"id{i}" for i in range(n)]
    vals = [float(i) * 1.5 for i in range(n)]
    one = _sample(ids, vals, capacity)
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    parts = [_sample(ids[a:b], vals[a:b], capacity) for a, b in itertools.pairwise(bounds)]
    order.shuffle(parts)  # type: ignore[attr-defined]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    assert merged == one
    assert len(merged) == min(n, capacity)


def test_merged_sample_is_uniform_over_the_union() -> None:
    """Chi-square on inclusion counts over many seeds: 3 unequal partitions, capacity 6 of 30."""
    n, cap, trials = 30, 6, 1500
    ids = [f"row{i}" for i in range(n)]
    hits = np.zeros(n)
    for seed in range(trials):
        prio = priorities(ids, seed)
        parts = [(0, 3), (3, 21), (21, 30)]  # very unequal sides
        merged = RowSample(cap)
        for a, b in parts:
            part = RowSample(cap)
            part.add(prio[a:b], {"i": np.arange(a, b, dtype=np.float64)})
            merged = merged.merge(part)
        hits[merged.column("i").astype(int)] += 1
    assert hits.sum() == cap * trials
    p = chisquare(hits, np.full(n, cap * trials / n)).pvalue
    assert p > 1e-3, p


def test_generator_fallback_is_uniform_too() -> None:
    n, cap, trials = 20, 5, 1500
    hits = np.zeros(n)
    for seed in range(trials):
        s = RowSample(cap)
        s.add(priorities([None] * 8, seed), {"i": np.arange(8, dtype=np.float64)})
        s.add(priorities([None] * 12, seed, offset=8), {"i": np.arange(8, 20, dtype=np.float64)})
        hits[s.column("i").astype(int)] += 1
    assert chisquare(hits, np.full(n, cap * trials / n)).pvalue > 1e-3


def test_columns_align_and_missing_cells_are_nan() -> None:
    s = RowSample(10)
    s.add(priorities(["a", "b"]), {"x": np.array([1.0, 2.0])})
    s.add(priorities(["c"]), {"y": np.array([5.0])})
    assert sorted(s.column("x").tolist()) == [1.0, 2.0]
    assert s.column("y").tolist() == [5.0]
    assert s.column("absent").size == 0


def test_pack_roundtrip_and_errors() -> None:
    s = _sample(["a", "b", "c"], [1.0, np.nan, 3.0], capacity=2)
    arrays: dict[str, np.ndarray] = {}
    meta = s.dump("s", arrays)
    meta2, arrays2 = unpack(pack({"m": meta}, arrays))
    assert RowSample.load(meta2["m"], "s", arrays2) == s
    with pytest.raises(MetricsError):
        unpack(b"XXXX" + b"\0" * 8)
    with pytest.raises(MetricsError):
        unpack(pack({}, arrays) + b"\0")
    with pytest.raises(MetricsError):
        s.merge(RowSample(3))
