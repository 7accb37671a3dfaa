"""The built-in rules: what every model with a reference is watched for without configuration.

Each reads a row the worker already writes (``drift`` family, or the ``concept`` family the
alert evaluator adds: :mod:`stream.alerts.detectors`). docs/alerts.md explains each choice
and the false-alarm rates measured with ``load_tests/bench_alerts.py``.
"""

from __future__ import annotations

from stream.config import AlertRule, AlertSettings, Settings


def default_rules(alerts: AlertSettings) -> tuple[AlertRule, ...]:
    return _always(alerts) + _optional(alerts)


def _optional(alerts: AlertSettings) -> tuple[AlertRule, ...]:
    """Rules an option turns on: a dead-letter rate (the ``ingest`` rows,
    :mod:`stream.ingest.counts`) depends on the producers, so no threshold suits all."""
    if alerts.dead_letter_share is None:
        return ()
    return (AlertRule(name="dead_letter_rate", family="ingest", metric="rejected_share",
                      op=">", threshold=alerts.dead_letter_share, severity="warning",
                      for_windows=1, resolve_windows=2,
                      description="share of the window's events rejected to the dead-letter "
                                  "topic above alerts.dead_letter_share"),)


def _always(alerts: AlertSettings) -> tuple[AlertRule, ...]:
    return (
        AlertRule(name="dataset_drift", family="drift", metric="dataset_drift", op=">=",
                  threshold=1.0, severity="warning", for_windows=3, resolve_windows=2,
                  description="share of drifted features reached metrics.dataset_drift_share"
                              " in 3 windows in a row"),
        AlertRule(name="prediction_drift", source="drift", metric="drifted",
                  feature="__prediction__", op=">=", threshold=1.0, severity="warning",
                  for_windows=3, resolve_windows=2,
                  description="the model's output distribution drifted from the reference"),
        AlertRule(name="performance_drop", family="concept", metric="accuracy_drop_p_value",
                  op="<", threshold=alerts.performance_alpha, severity="critical",
                  for_windows=1, resolve_windows=2,
                  description="accuracy significantly below the reference's by more than "
                              "alerts.min_drop (one-sided two-proportion test)"),
        AlertRule(name="concept_drift", family="concept", metric="error_cusum", op=">",
                  threshold=alerts.cusum_threshold, severity="critical", for_windows=1,
                  resolve_windows=2,
                  description="CUSUM of the error stream against the reference error rate"),
        AlertRule(name="volume_collapse", family="concept", metric="volume_ratio", op="<",
                  threshold=alerts.volume_ratio, severity="critical", for_windows=1,
                  resolve_windows=2,
                  description="predictions in the window below a share of the trailing "
                              "median"),
        AlertRule(name="label_coverage_collapse", family="concept",
                  metric="label_coverage_ratio", op="<", threshold=alerts.coverage_ratio,
                  severity="warning", for_windows=3, resolve_windows=2,
                  description="labelled share below a share of the trailing median"),
    )


def rules_for(settings: Settings, model_id: str) -> list[AlertRule]:
    """The rules that watch ``model_id``: defaults (unless disabled), replaced by name by a
    configured rule, then the configured ones."""
    mine = [r for r in settings.rules if r.model_id is None or r.model_id == model_id]
    names = {r.name for r in mine}
    out = []
    if settings.alerts.default_rules:
        out = [r for r in default_rules(settings.alerts) if r.name not in names]
    return out + mine
