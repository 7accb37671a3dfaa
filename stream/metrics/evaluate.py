"""One window's rows: drift, quality, service, performance and estimate, from its state.

Stage 2 calls :func:`evaluate_window` on the merged :class:`~stream.metrics.window.WindowState`
of a (model, window, segment); the offline computation calls the same function, so the two
agree row for row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from stream.config import MetricsSettings, ModelSettings
from stream.errors import MetricsError
from stream.metrics.distribution import distribution_rows
from stream.metrics.drift import DriftResult, adjust_p_values, column_drift, dataset_drift
from stream.metrics.estimate import estimate_rows
from stream.metrics.performance import performance_metrics
from stream.metrics.quality import latency_metrics, quality_metrics
from stream.metrics.reference import ColumnProfile, ReferenceProfile
from stream.metrics.sampling import FloatArray
from stream.metrics.window import LATENCY_COLUMN, WindowState
from stream.results import (
    ALL_SEGMENT,
    PREDICTION_COLUMN,
    DriftRow,
    Family,
    MetricRow,
    WindowKey,
    WindowResults,
)


def _drift_results(
    state: WindowState,
    reference: ReferenceProfile,
    columns: Mapping[str, ColumnProfile],
    settings: MetricsSettings,
    model: ModelSettings,
    skip: str | None = None,
) -> tuple[list[DriftResult], DriftResult | None]:
    """Per-feature results (corrected across features) and the prediction's result.

    ``reference`` is the profile the window is measured against (a segment's own, or the
    whole: :meth:`ReferenceProfile.for_segment`); ``columns`` the whole reference's columns,
    so that a column the segment's rows never had gets a row with no verdict. ``skip`` is the
    feature a segment is defined by (``country`` in ``country=DE``): within its own segment
    it is constant by construction, so its "drift" says nothing.
    """
    features: list[DriftResult] = []
    prediction: DriftResult | None = None
    for name, whole in columns.items():
        if name == skip:
            continue
        ref = reference.columns.get(name) or ColumnProfile(whole.kind, 0)
        current: FloatArray | dict[str, int]
        if ref.kind == "numeric":
            reference_values: FloatArray | Mapping[str, int] = ref.sample
            current = state.sample.column(name)
        else:
            reference_values = ref.counts
            stats = state.columns.get(name)
            current = dict(stats.categories.counts) if stats is not None else {}
        method = model.drift_methods.get(name)
        threshold = model.drift_thresholds.get(name)
        try:
            result = column_drift(
                name,
                reference_values,
                current,
                method=method,
                threshold=threshold,
                min_sample_size=settings.min_sample_size,
                reference_size=ref.count,
            )
        except MetricsError:
            # A configured method that does not fit the column's kind: no verdict, not a crash.
            size = current.size if isinstance(current, np.ndarray) else sum(current.values())
            result = DriftResult(
                name, method or "invalid", None, None, threshold or 0.0, None, ref.count, int(size)
            )
        if name == PREDICTION_COLUMN:
            prediction = result
        else:
            features.append(result)
    features = adjust_p_values(features, settings.correction)
    if prediction is not None:
        prediction = adjust_p_values([prediction], settings.correction)[0]
    return features, prediction


def evaluate_window(
    state: WindowState,
    reference: ReferenceProfile | None,
    settings: MetricsSettings,
    model: ModelSettings,
    key: WindowKey,
    revision: int,
    computed_at: int,
) -> WindowResults:
    """Every row of one window (or one revision of it), following :mod:`stream.results`.

    - ``drift`` (needs a reference): one :class:`DriftRow` per reference feature and for
      ``__prediction__``; p-values corrected across the window's features with
      ``settings.correction`` (the prediction is its own family of one); metric rows
      ``dataset_drift_share``, ``dataset_drift`` (1/0) and ``drifted_features``, feature "";
    - ``quality``: ``row_count``; per column ``null_share``, ``type_error_share`` and, with a
      reference, ``out_of_range_share`` / ``unseen_category_share`` (:mod:`.quality`);
    - ``service``: ``count``, ``latency_p50/p90/p99/mean/min/max``;
    - ``performance`` (once labels exist, :mod:`.performance`); ``estimate`` (:mod:`.estimate`).

    Every metric row carries ``labelled_count`` = labelled rows and ``coverage`` =
    labelled / predicted rows (None without predictions).
    """
    n = state.n_predictions
    coverage = state.n_labelled / n if n else None
    common = (key.model_id, key.model_version, key.segment, key.window_start, key.window_end)
    metrics: list[MetricRow] = []

    def row(family: Family, metric: str, feature: str, value: float | None, size: int) -> None:
        if value is not None and not math.isfinite(value):
            value = None if math.isnan(value) else value
        metrics.append(
            MetricRow(
                *common,
                family,
                metric,
                feature,
                value,
                size,
                state.n_labelled,
                coverage,
                revision,
                computed_at,
            )
        )

    drift_rows: list[DriftRow] = []
    if reference is not None:
        segment_key = key.segment.split("=", 1)[0] if "=" in key.segment else None
        features, prediction = _drift_results(
            state, reference.for_segment(key.segment, settings.min_sample_size),
            reference.columns, settings, model, segment_key)
        for r in [*features, *([prediction] if prediction is not None else [])]:
            drift_rows.append(
                DriftRow(
                    *common,
                    r.feature,
                    r.method,
                    r.statistic,
                    r.p_value,
                    r.p_value_adjusted,
                    r.threshold,
                    r.drifted,
                    r.reference_size,
                    r.current_size,
                    revision,
                    computed_at,
                )
            )
        share, drifted = dataset_drift(features, share=settings.dataset_drift_share)
        row("drift", "dataset_drift_share", "", share, n)
        row("drift", "dataset_drift", "", None if drifted is None else float(drifted), n)
        row("drift", "drifted_features", "", float(sum(bool(r.drifted) for r in features)), n)

    row("quality", "row_count", "", float(n), n)
    names = sorted(set(state.columns) | (set(reference.columns) if reference else set()))
    for metric, feature, value in quality_metrics(state, reference, names):
        row("quality", metric, feature, value, n)
    if reference is not None and key.segment == ALL_SEGMENT and settings.distribution_rows:
        for feature, metric, value, size in distribution_rows(
                reference, {c: state.sample.column(c) for c in reference.columns},
                {c: dict(s.categories.counts) for c, s in state.columns.items()}):
            row("distribution", metric, feature, value, size)

    row("service", "count", "", float(n), n)
    for metric, value in latency_metrics(state, LATENCY_COLUMN):
        row("service", metric, "", value, state.latency.n)

    realised = performance_metrics(state)
    for metric, value in realised.items():
        row("performance", metric, "", value, state.n_labelled)

    calibration = reference.calibration if reference is not None else None
    for metric, value, size in estimate_rows(
        state.task, state.scores, state.labelled_scores, calibration, realised,
        z=settings.estimate_band_z, min_calibration_rows=settings.min_calibration_rows,
    ):
        row("estimate", metric, "", value, size)

    return WindowResults(drift=tuple(drift_rows), metrics=tuple(metrics))
