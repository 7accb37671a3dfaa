"""The ready queries in clickhouse/queries/ run on seeded rows and give the expected answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stream.results import WindowResults
from stream.store.base import QueryResult
from stream.store.embedded import EmbeddedStore

from .rows import WINDOW, alert, drift_row, metric_row

pytestmark = pytest.mark.integration

QUERIES = Path(__file__).resolve().parents[3] / "clickhouse" / "queries"
NOW = (int(time.time() * 1000) // WINDOW) * WINDOW
HOUR = 3_600_000


def run(store: EmbeddedStore, name: str, **params: Any) -> QueryResult:
    return store.query((QUERIES / f"{name}.sql").read_text(encoding="utf-8"), params)


def at(start: int, **changes: Any) -> dict[str, Any]:
    return {"window_start": start, "window_end": start + WINDOW, **changes}


def test_the_five_queries_exist() -> None:
    assert sorted(p.stem for p in QUERIES.glob("*.sql")) == [
        "alert_history", "drifted_features_last_day", "latest_drift_per_feature",
        "performance_with_coverage", "segments_ranked_by_drift",
    ]  # fmt: skip


def test_docs_show_each_query_as_it_is() -> None:
    """docs/store.md is the one place that shows the queries (the README links to it)."""
    text = (QUERIES.parents[1] / "docs" / "store.md").read_text(encoding="utf-8")
    paths = sorted(QUERIES.glob("*.sql"))
    assert paths
    for path in paths:
        assert path.read_text(encoding="utf-8").rstrip() in text, path.name


def test_latest_drift_per_feature(store: EmbeddedStore) -> None:
    old, new = NOW - 2 * HOUR, NOW - HOUR
    store.write(WindowResults(drift=(
        drift_row(**at(old), feature="age", drifted=True, statistic=0.3),
        drift_row(**at(new), feature="age", drifted=False, statistic=0.05, revision=1),
        drift_row(**at(new), feature="age", drifted=True, statistic=0.25, revision=2),
        drift_row(**at(new), feature="income", drifted=None, statistic=None),
        drift_row(**at(new), feature="age", segment="country=DE", drifted=True),  # not 'all'
        drift_row(**at(new), feature="age", model_id="other"),
    )))  # fmt: skip
    result = run(store, "latest_drift_per_feature", model_id="churn")
    got = [(r["feature"], r["drifted"], r["statistic"]) for r in result.dicts()]
    assert got == [("age", 1, 0.25), ("income", None, None)]


def test_drifted_features_last_day(store: EmbeddedStore) -> None:
    store.write(WindowResults(drift=(
        drift_row(**at(NOW - HOUR), feature="age", drifted=True, statistic=0.3),
        drift_row(**at(NOW - 2 * HOUR), feature="age", drifted=True, statistic=0.4),
        drift_row(**at(NOW - 3 * HOUR), feature="age", drifted=False),
        drift_row(**at(NOW - HOUR), feature="income", drifted=True, statistic=0.2,
                  model_id="fraud"),
        drift_row(**at(NOW - HOUR), feature="zip", drifted=None),
        drift_row(**at(NOW - 30 * HOUR), feature="old", drifted=True),
        # Drifted in revision 1, not in revision 2: the latest revision decides.
        drift_row(**at(NOW - HOUR), feature="revised", drifted=True, revision=1),
        drift_row(**at(NOW - HOUR), feature="revised", drifted=False, revision=2),
    )))  # fmt: skip
    rows = run(store, "drifted_features_last_day").dicts()
    assert [(r["model_id"], r["feature"], r["drifted_windows"], r["max_statistic"])
            for r in rows] == [("churn", "age", 2, 0.4), ("fraud", "income", 1, 0.2)]  # fmt: skip


def test_performance_with_coverage(store: EmbeddedStore) -> None:
    w1, w2 = NOW - 2 * HOUR, NOW - HOUR
    store.write(WindowResults(metrics=(
        metric_row(**at(w1), value=0.9, coverage=0.2, labelled_count=20, sample_size=100),
        # Late labels revise window 1: more coverage, new value.
        metric_row(**at(w1), value=0.85, coverage=0.9, labelled_count=90, sample_size=100,
                   revision=2),
        metric_row(**at(w2), value=None, coverage=0.0, labelled_count=0, sample_size=80),
        metric_row(**at(w2), family="estimate", metric="expected_accuracy", value=0.8,
                   coverage=0.0, labelled_count=0, sample_size=80),
        metric_row(**at(w2), metric="f1", value=0.7),
        metric_row(**at(w2), segment="country=DE", value=0.1),
    )))  # fmt: skip
    rows = run(store, "performance_with_coverage", model_id="churn", metric="accuracy").dicts()
    got = [(r["family"], r["value"], r["coverage"], r["revision"]) for r in rows]
    assert got == [
        ("performance", 0.85, 0.9, 2),
        ("estimate", 0.8, 0.0, 1),
        ("performance", None, 0.0, 1),
    ]


def test_segments_ranked_by_drift(store: EmbeddedStore) -> None:
    w = NOW - HOUR
    rows = [drift_row(**at(w), segment="country=DE", feature=f, drifted=True) for f in "abc"]
    rows += [drift_row(**at(w), segment="country=DE", feature="d", drifted=False)]
    rows += [drift_row(**at(w), segment="all", feature=f, drifted=d)
             for f, d in zip("abcd", (True, False, False, False), strict=True)]  # fmt: skip
    rows += [drift_row(**at(w), segment="country=FR", feature=f, drifted=None) for f in "ab"]
    rows += [drift_row(**at(w), segment="country=FR", feature="c", drifted=False)]
    rows += [drift_row(**at(w), segment="country=IT", feature="a", drifted=None)]  # no verdict
    rows += [drift_row(**at(NOW - 10 * 24 * HOUR), segment="country=ES", drifted=True)]
    store.write(WindowResults(drift=tuple(rows)))
    got = [
        (r["segment"], r["drifted_verdicts"], r["verdicts"], r["drift_share"], r["no_verdict"])
        for r in run(store, "segments_ranked_by_drift", model_id="churn").dicts()
    ]
    assert got == [
        ("country=DE", 3, 4, 0.75, 0),
        ("all", 1, 4, 0.25, 0),
        ("country=FR", 0, 1, 0.0, 2),
    ]


def test_alert_history(store: EmbeddedStore) -> None:
    store.write_alerts([
        alert(id="1", time=NOW - 3 * HOUR, state="firing"),
        alert(id="2", time=NOW - 2 * HOUR, state="resolved", value=0.9),
        alert(id="2", time=NOW - 2 * HOUR, state="resolved", value=0.9),  # published twice
        alert(id="3", time=NOW - HOUR, fingerprint="fp-drift", rule="drift_share_high",
              metric="drift_share", severity="warning", message="drift"),
        alert(id="4", time=NOW - 9 * 24 * HOUR, state="firing"),
    ])  # fmt: skip
    rows = run(store, "alert_history", days=7).dicts()
    assert [(r["rule"], r["state"]) for r in rows] == [
        ("drift_share_high", "firing"),
        ("accuracy_low", "resolved"),
        ("accuracy_low", "firing"),
    ]
    current = store.query("SELECT rule, state FROM alerts_current ORDER BY rule").rows
    assert current == [("accuracy_low", "resolved"), ("drift_share_high", "firing")]
