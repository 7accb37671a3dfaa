"""Same values and verdicts as Evidently's pandas code paths, within 1e-9.

Evidently is not a dependency; these are short pandas transcriptions of what its
``legacy/calculations/data_drift.py`` (cleaning, default choice) and ``stattests/`` do, so the
numpy re-implementation is checked against the original data flow (Series.value_counts,
dict-aligned keys, np.std on a Series, get_binned_data on the concatenated Series).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from stream.metrics.drift import column_drift

pd = pytest.importorskip("pandas")

TOL = 1e-9


def _clean(s: pd.Series) -> pd.Series:
    return s.replace([-np.inf, np.inf], np.nan).dropna()


def _default(ref: pd.Series, cur: pd.Series, numerical: bool) -> str:
    u = pd.concat([ref, cur]).nunique()
    if ref.shape[0] <= 1000:
        if numerical and u > 5:
            return "ks"
        return "chisquare" if u > 2 else "z"
    return "wasserstein" if numerical and u > 5 else "jensenshannon"


def _aligned(ref: pd.Series, cur: pd.Series) -> tuple[list[object], dict, dict]:
    keys = list(set(ref.unique()) | set(cur.unique()))
    return (
        keys,
        {**dict.fromkeys(keys, 0), **ref.value_counts()},
        {
            **dict.fromkeys(keys, 0),
            **cur.value_counts(),
        },
    )


def _binned(
    ref: pd.Series, cur: pd.Series, numerical: bool, fill: bool
) -> tuple[np.ndarray, np.ndarray]:
    if numerical and ref.nunique() > 20:
        bins = np.histogram_bin_edges(pd.concat([ref, cur]).values, bins="sturges")
        r = np.histogram(ref, bins)[0] / len(ref)
        c = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys, rd, cd = _aligned(ref, cur)
        r = np.array([rd[k] / len(ref) for k in keys])
        c = np.array([cd[k] / len(cur) for k in keys])
    if fill:
        for arr in (r, c):
            low = min(arr[arr != 0])
            np.place(arr, arr == 0, low / 10**6 if low <= 0.0001 else 0.0001)
    return r, c


def _evidently(method: str, ref: pd.Series, cur: pd.Series, numerical: bool) -> tuple[float, bool]:
    if method == "ks":
        p = stats.ks_2samp(ref, cur)[1]
        return p, p <= 0.05
    if method == "chisquare":
        keys, rd, cd = _aligned(ref, cur)
        k = cur.shape[0] / ref.shape[0]
        with np.errstate(divide="ignore"):  # a category new in current: expected 0
            p = stats.chisquare([cd[x] for x in keys], [rd[x] * k for x in keys])[1]
        return p, p < 0.05
    if method == "z":
        if ref.nunique() == 1 and cur.nunique() == 1 and ref.unique()[0] == cur.unique()[0]:
            return 1.0, False
        first = sorted(set(ref.unique()) | set(cur.unique()))[0]
        a = ref.apply(lambda x: 0 if x == first else 1)
        b = cur.apply(lambda x: 0 if x == first else 1)
        n1, n2 = len(a), len(b)
        p1, p2 = float(sum(a)) / n1, float(sum(b)) / n2
        pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        p = 2 * (1 - stats.norm.cdf(np.abs(z)))
        return p, p < 0.05
    if method == "wasserstein":
        value = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
        return value, value >= 0.1
    if method == "jensenshannon":
        value = distance.jensenshannon(*_binned(ref, cur, numerical, False))
        return value, value >= 0.1
    if method == "psi":
        r, c = _binned(ref, cur, numerical, True)
        value = np.sum((r - c) * np.log(r / c))
        return value, value >= 0.1
    if method == "kl_div":
        value = stats.entropy(*_binned(ref, cur, numerical, True))
        return value, value >= 0.1
    if method == "hellinger":
        keys = list(set(ref.unique()) | set(cur.unique()))
        if not numerical:
            rs, cs = ref.value_counts() / len(ref), cur.value_counts() / len(cur)
            total = sum(math.sqrt(rs.get(k, 0) * cs.get(k, 0)) for k in keys)
        else:
            bins = np.histogram_bin_edges(keys, bins="sturges")
            h1 = np.histogram(ref.to_numpy(), bins=bins, density=True)[0]
            h2 = np.histogram(cur.to_numpy(), bins=bins, density=True)[0]
            width = (max(bins) - min(bins)) / (len(bins) - 1)
            total = sum(math.sqrt(x * y) * width for x, y in zip(h1, h2, strict=True))
        value = math.sqrt(1 - np.clip(total, 0, 1))
        return value, value >= 0.1
    raise AssertionError(method)


def _numeric_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2024)
    cases = []
    for i, (n_ref, n_cur, shift) in enumerate(
        [(300, 100, 0.0), (900, 200, 0.25), (1000, 60, 0.1), (1001, 300, 0.05), (3000, 500, 0.3)]
    ):
        ref = rng.normal(0, 1, n_ref)
        cur = rng.normal(shift, 1.1, n_cur)
        ref[rng.integers(0, n_ref, 5)] = np.nan
        cur[rng.integers(0, n_cur, 3)] = np.inf
        cases.append((f"normal{i}", ref, cur))
        cases.append((f"few{i}", np.round(ref * 0.6).clip(-2, 2), np.round(cur * 0.6).clip(-2, 2)))
        cases.append((f"ints{i}", np.floor(np.abs(ref) * 6), np.floor(np.abs(cur) * 6)))
    cases.append(("binary", (rng.random(700) < 0.3) * 1.0, (rng.random(100) < 0.4) * 1.0))
    cases.append(("constant", np.full(500, 2.0), np.full(100, 2.0)))
    return cases


NUMERIC = _numeric_cases()
METHODS = ["ks", "wasserstein", "jensenshannon", "psi", "kl_div", "hellinger"]


@pytest.mark.parametrize(("name", "ref", "cur"), NUMERIC, ids=[c[0] for c in NUMERIC])
def test_default_choice_value_and_verdict_match(
    name: str, ref: np.ndarray, cur: np.ndarray
) -> None:
    r, c = _clean(pd.Series(ref)), _clean(pd.Series(cur))
    method = _default(r, c, numerical=True)
    value, drifted = _evidently(method, r, c, numerical=True)
    ours = column_drift(name, ref, cur, min_sample_size=0)
    assert ours.method == method
    score = ours.p_value if ours.p_value is not None else ours.statistic
    assert score == pytest.approx(value, abs=TOL)
    assert ours.drifted is bool(drifted)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "ref", "cur"), NUMERIC[:9], ids=[c[0] for c in NUMERIC[:9]])
def test_named_numeric_methods_match(
    method: str, name: str, ref: np.ndarray, cur: np.ndarray
) -> None:
    r, c = _clean(pd.Series(ref)), _clean(pd.Series(cur))
    value, drifted = _evidently(method, r, c, numerical=True)
    ours = column_drift(name, ref, cur, method=method, min_sample_size=0)
    score = ours.p_value if ours.p_value is not None else ours.statistic
    assert score == pytest.approx(value, abs=TOL)
    assert ours.drifted is bool(drifted)


def _categorical_cases() -> list[tuple[str, list[str], list[str]]]:
    rng = np.random.default_rng(99)
    labels = np.array(["DE", "FR", "IT", "ES", "PL", "NL"])
    return [
        ("six", list(rng.choice(labels, 800)), list(rng.choice(labels, 150))),
        ("new_and_gone", list(rng.choice(labels[:4], 500)), list(rng.choice(labels[2:], 90))),
        ("two", list(rng.choice(labels[:2], 400)), list(rng.choice(labels[:2], 70, p=[0.7, 0.3]))),
        ("one", ["DE"] * 300, ["DE"] * 40),
        ("big", list(rng.choice(labels, 4000)), list(rng.choice(labels, 300))),
        ("big_two", list(rng.choice(labels[:2], 2000)), list(rng.choice(labels[:2], 300))),
    ]


CATEGORICAL = _categorical_cases()


def _counts(values: list[str]) -> dict[str, int]:
    return {str(k): int(v) for k, v in pd.Series(values).value_counts().items()}


@pytest.mark.parametrize(("name", "ref", "cur"), CATEGORICAL, ids=[c[0] for c in CATEGORICAL])
def test_categorical_default_and_named_methods_match(
    name: str, ref: list[str], cur: list[str]
) -> None:
    r, c = pd.Series(ref), pd.Series(cur)
    methods = [_default(r, c, numerical=False), "jensenshannon", "psi", "kl_div", "hellinger"]
    for i, method in enumerate(methods):
        value, drifted = _evidently(method, r, c, numerical=False)
        ours = column_drift(
            name, _counts(ref), _counts(cur), method=None if i == 0 else method, min_sample_size=0
        )
        assert ours.method == method
        score = ours.p_value if ours.p_value is not None else ours.statistic
        assert score == pytest.approx(value, abs=TOL), method
        assert ours.drifted is bool(drifted), method
