"""Result rows with realistic defaults; tests change only the fields they are about."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stream.results import AlertRecord, DriftRow, MetricRow

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
WINDOW = 300_000


def drift_row(**changes: Any) -> DriftRow:
    base = DriftRow(
        model_id="churn", model_version="v1", segment="all", window_start=T0,
        window_end=T0 + WINDOW, feature="age", method="ks", statistic=0.21, p_value=0.003,
        p_value_adjusted=0.012, threshold=0.05, drifted=True, reference_size=5000,
        current_size=812, revision=1, computed_at=T0 + WINDOW + 1_234,
    )  # fmt: skip
    return replace(base, **changes)


def metric_row(**changes: Any) -> MetricRow:
    base = MetricRow(
        model_id="churn", model_version="v1", segment="all", window_start=T0,
        window_end=T0 + WINDOW, family="performance", metric="accuracy", feature="",
        value=0.91, sample_size=812, labelled_count=400, coverage=400 / 812, revision=1,
        computed_at=T0 + WINDOW + 1_234,
    )  # fmt: skip
    return replace(base, **changes)


def alert(**changes: Any) -> AlertRecord:
    base = AlertRecord(
        id="a-1", fingerprint="fp-accuracy", model_id="churn", rule="accuracy_low",
        metric="accuracy", feature=None, segment="all", window_start=T0,
        window_end=T0 + WINDOW, value=0.61, threshold=0.8, severity="critical",
        state="firing", time=T0 + WINDOW + 2_000, message="accuracy 0.61 < 0.8",
    )  # fmt: skip
    return replace(base, **changes)
