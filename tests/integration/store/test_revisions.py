"""Re-delivery leaves one row per key; a later revision replaces its predecessor."""

from __future__ import annotations

import pytest

from stream.results import WindowResults
from stream.store.embedded import EmbeddedStore

from .rows import alert, drift_row, metric_row

pytestmark = pytest.mark.integration


def _count(store: EmbeddedStore, table: str) -> int:
    return int(store.query(f"SELECT count() FROM {table}").rows[0][0])


def test_redelivering_the_same_results_leaves_one_row_per_key(store: EmbeddedStore) -> None:
    results = WindowResults(
        drift=(drift_row(feature="age"), drift_row(feature="income"), drift_row(segment="c=DE")),
        metrics=(metric_row(), metric_row(metric="f1", value=0.8), metric_row(feature="age",
                 family="quality", metric="null_share", value=0.0)),
    )  # fmt: skip
    for _ in range(3):
        store.write(results)
    assert _count(store, "feature_drift_latest") == 3
    assert _count(store, "window_metrics_latest") == 3
    store.query("OPTIMIZE TABLE feature_drift FINAL")
    store.query("OPTIMIZE TABLE window_metrics FINAL")
    assert _count(store, "feature_drift") == 3
    assert _count(store, "window_metrics") == 3


def test_a_later_revision_replaces_its_predecessor(store: EmbeddedStore) -> None:
    store.write(
        WindowResults(
            drift=(drift_row(revision=1, drifted=None, statistic=None),),
            metrics=(metric_row(revision=1, value=0.5, coverage=0.1),),
        )
    )
    store.write(
        WindowResults(
            drift=(drift_row(revision=2, drifted=True, statistic=0.4),),
            metrics=(metric_row(revision=2, value=0.9, coverage=0.8),),
        )
    )
    # A stale copy of revision 1 arriving late must not win.
    stale = WindowResults(
        drift=(drift_row(revision=1, drifted=None, statistic=None),),
        metrics=(metric_row(revision=1, value=0.5, coverage=0.1),),
    )
    store.write(stale)
    latest = store.query("SELECT revision, drifted, statistic FROM feature_drift_latest").rows
    assert latest == [(2, 1, 0.4)]
    metrics = store.query("SELECT revision, value, coverage FROM window_metrics_latest").rows
    assert metrics == [(2, 0.9, 0.8)]
    assert _count(store, "feature_drift") == 3  # history kept until the merge
    store.query("OPTIMIZE TABLE feature_drift FINAL")
    assert store.query("SELECT revision FROM feature_drift").rows == [(2,)]


def test_revisions_are_per_key(store: EmbeddedStore) -> None:
    store.write(WindowResults(drift=(drift_row(feature="a", revision=3),
                                     drift_row(feature="b", revision=1))))  # fmt: skip
    store.write(WindowResults(drift=(drift_row(feature="b", revision=2),)))
    rows = store.query("SELECT feature, revision FROM feature_drift_latest ORDER BY feature").rows
    assert rows == [("a", 3), ("b", 2)]


def test_same_alert_twice_is_one_row_and_current_state_follows_the_last_change(
    store: EmbeddedStore,
) -> None:
    fired = alert(id="a-1", state="firing")
    store.write_alerts([fired, fired])
    assert store.query("SELECT count() FROM alerts FINAL").rows == [(1,)]
    assert store.query("SELECT state FROM alerts_current").rows == [("firing",)]
    store.write_alerts([alert(id="a-2", state="resolved", time=fired.time + 60_000, value=0.9)])
    assert store.query("SELECT state, value FROM alerts_current").rows == [("resolved", 0.9)]
