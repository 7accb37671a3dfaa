"""What is written comes back equal: NULLs, no verdict, non-finite floats, hostile names."""

from __future__ import annotations

import math
import random
from dataclasses import fields
from typing import Any

import orjson
import pytest

from stream.errors import StoreError
from stream.results import AlertRecord, Contributor, DriftRow, MetricRow, WindowResults
from stream.store import schema
from stream.store.embedded import EmbeddedStore

from .rows import T0, alert, drift_row, metric_row

pytestmark = pytest.mark.integration

HOSTILE = [
    "plain",
    "it's",
    'say "hi"',
    "x'); DROP TABLE feature_drift; --",
    "{model:String}",
    "back\\slash",
    "tab\tnew\nline",
    "Größe ✓ 日本語 🚀",
    "",
]


def _select(table: str, columns: tuple[str, ...]) -> str:
    exprs = [f"toUnixTimestamp64Milli({c})" if c in schema.TIME_COLUMNS else c for c in columns]
    return f"SELECT {', '.join(exprs)} FROM {table}"


def _read_back(store: EmbeddedStore, table: str, cls: type) -> list[Any]:
    columns = schema.COLUMNS[table]
    rows = store.query(_select(table, columns) + " ORDER BY " + ", ".join(columns)).rows
    out = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        if cls is DriftRow and values["drifted"] is not None:
            values["drifted"] = bool(values["drifted"])
        if cls is AlertRecord:
            values["contributors"] = tuple(Contributor(**c)
                                           for c in orjson.loads(values["contributors"]))
        out.append(cls(**values))
    return out


def _same(a: Any, b: Any) -> bool:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or type(x) is not type(y):
            return False
    return True


def _assert_same_rows(written: list[Any], read: list[Any]) -> None:
    key = [f.name for f in fields(written[0])]
    ordered = sorted(written, key=lambda r: tuple(str(getattr(r, k)) for k in key))
    read = sorted(read, key=lambda r: tuple(str(getattr(r, k)) for k in key))
    assert len(read) == len(ordered)
    for a, b in zip(ordered, read, strict=True):
        assert _same(a, b), f"{a}\n!=\n{b}"


def test_drift_rows_round_trip_with_nulls_and_hostile_names(store: EmbeddedStore) -> None:
    written = [
        drift_row(feature=name, segment=f"country={name}", model_id=f"m {name}")
        for name in HOSTILE
    ] + [
        drift_row(feature="no_verdict", statistic=None, p_value=None, p_value_adjusted=None,
                  drifted=None, current_size=3),
        drift_row(feature="stable", drifted=False, statistic=0.0, p_value=1.0),
        drift_row(feature="psi_inf", method="psi", statistic=math.inf, p_value=None,
                  drifted=True, threshold=0.2),
        drift_row(feature="neg_inf", statistic=-math.inf, p_value=math.nan),
        drift_row(feature="epoch_ms", window_start=T0 + 999, window_end=T0 + 300_999,
                  computed_at=1),
    ]  # fmt: skip
    store.write(WindowResults(drift=tuple(written)))
    _assert_same_rows(written, _read_back(store, "feature_drift", DriftRow))
    verdicts = store.query(
        "SELECT feature, drifted FROM feature_drift_latest "
        "WHERE feature IN ('no_verdict', 'stable') ORDER BY feature"
    ).rows
    assert verdicts == [("no_verdict", None), ("stable", 0)]  # no verdict is not "no drift"


def test_metric_rows_round_trip(store: EmbeddedStore) -> None:
    written = [metric_row(feature=name, metric=f"null_share {name}", family="quality",
                          value=0.25, coverage=None) for name in HOSTILE] + [
        metric_row(),
        metric_row(metric="f1", value=None, coverage=0.0, labelled_count=0),
        metric_row(family="service", metric="latency_p95_ms", value=1e-300, coverage=None),
        metric_row(family="estimate", metric="cbpe_accuracy", value=1.7976931348623157e308),
    ]  # fmt: skip
    store.write(WindowResults(metrics=tuple(written)))
    _assert_same_rows(written, _read_back(store, "window_metrics", MetricRow))


def test_alerts_round_trip(store: EmbeddedStore) -> None:
    written = [
        alert(),
        alert(id="a-2", state="resolved", time=T0 + 900_000, value=None, message="ok again"),
        alert(id="a-3", fingerprint="fp-drift", rule="drift", metric="drift_share",
              feature="x'); DROP TABLE alerts; --", segment=None, severity="info",
              message="Größe \"drifted\" 🚀", model_version="v2", op="<",
              contributors=(Contributor("x", 0.5, "wasserstein 0.5"), Contributor("y", None)),
              detected_at=T0 + 5),
    ]  # fmt: skip
    store.write_alerts(written)
    _assert_same_rows(written, _read_back(store, "alerts", AlertRecord))


def test_parameters_are_values_not_sql(store: EmbeddedStore) -> None:
    store.write(WindowResults(drift=(drift_row(feature="x'); DROP TABLE feature_drift; --"),)))
    hit = store.query(
        "SELECT count() FROM feature_drift WHERE feature = {f:String}",
        {"f": "x'); DROP TABLE feature_drift; --"},
    ).rows
    assert hit == [(1,)]
    assert store.query("EXISTS TABLE feature_drift").rows == [(1,)]


def test_ten_thousand_rows_in_one_write(store: EmbeddedStore) -> None:
    rows = tuple(drift_row(feature=f"f{i:05d}") for i in range(10_000))
    store.write(WindowResults(drift=rows))
    assert store.query("SELECT count(), uniqExact(feature) FROM feature_drift").rows == [
        (10_000, 10_000)
    ]


def test_epoch_milliseconds_are_exact_over_a_wide_range(store: EmbeddedStore) -> None:
    """Times travel as ``ms / 1000`` JSON numbers; pin that no millisecond is ever lost."""
    rng = random.Random(20260101)
    edges = [0, 1, 9, 10, 99, 999, 1000, 1001, 86_399_999, T0, T0 + 1, 4_102_444_799_999]
    # One insert may touch at most 100 monthly partitions: random times span 2020-2027.
    spread = [rng.randrange(1_577_836_800_000, 1_830_297_600_000) for _ in range(5000)]
    values = edges + spread
    rows = [drift_row(feature=f"f{i:05d}", window_start=v, window_end=v + 1, computed_at=v)
            for i, v in enumerate(values)]  # fmt: skip
    store.write(WindowResults(drift=tuple(rows[: len(edges)])))
    store.write(WindowResults(drift=tuple(rows[len(edges) :])))
    got = store.query(
        "SELECT toUnixTimestamp64Milli(window_start), toUnixTimestamp64Milli(window_end), "
        "toUnixTimestamp64Milli(computed_at) FROM feature_drift ORDER BY feature"
    ).rows
    assert got == [(v, v + 1, v) for v in values]


def test_a_refused_insert_raises_instead_of_dropping_rows(store: EmbeddedStore) -> None:
    """chDB's streaming insert reports success when the storage refuses rows; ours raises."""
    month = 31 * 24 * 3_600_000
    rows = tuple(drift_row(feature=f"f{i}", window_start=T0 + i * month) for i in range(150))
    with pytest.raises(StoreError, match="Too many partitions"):
        store.write(WindowResults(drift=rows))
    assert store.query("SELECT count() FROM feature_drift").rows == [(0,)]
