"""One frozen settings object for the whole worker.

Sources, highest priority first: keyword arguments, environment variables
(``TIDEWATCH_`` prefix, ``__`` between nested names, e.g. ``TIDEWATCH_KAFKA__BOOTSTRAP``),
then the YAML file named by ``TIDEWATCH_CONFIG`` (or passed to :func:`load_settings`), then
the defaults below. Environment wins over the file so that one file can serve several
deployments. Credentials are ``SecretStr`` so that they never appear in logs or reprs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from stream.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    """How to reach the brokers. ``sasl_password`` is secret."""

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None


class TopicSettings(_Frozen):
    """Topic names and sizes. Predictions and labels must share the partition count."""

    predictions: str = "predictions"
    labels: str = "ground_truth"
    dead_letter: str = "tidewatch-dead-letter"
    alerts: str = "tidewatch-alerts"
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class WorkerSettings(_Frozen):
    """The Faust app itself."""

    app_id: str = "tidewatch"
    #: RocksDB (rocksdict wheel): join state on disk, not bounded by memory; "memory://" keeps
    #: it in RAM (about 12% faster, measured) and restores it from the changelogs at start.
    table_store: str = "rocksdb://"
    #: Memory RocksDB may use per table partition (two write buffers of a quarter each, and a
    #: block cache of half). Faust's defaults (3 x 64 MB buffers and a 2 GB cache per
    #: partition) let a worker's RSS grow far past what the state needs.
    rocksdb_memory_mb: int = Field(default=16, ge=4)
    data_dir: Path = Path(".data/worker")
    web_port: int = 6066
    web_enabled: bool = True
    #: The token ``POST /sql`` requires (``tidewatch sql`` sends it). Unset: the worker makes
    #: a random one at each start and writes it to ``<store.path>/sql-token`` (embedded store;
    #: ``<data_dir>/<app_id>/sql-token`` otherwise), readable by its user only.
    sql_token: SecretStr | None = None
    batch_size: int = Field(default=500, ge=1)
    batch_within_s: float = Field(default=0.5, gt=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: A stop (SIGTERM, or an agent's crash) that takes longer ends the process with code 70;
    #: Faust's own stop can hang (stream.runtime.shutdown). Keep it under the supervisor's grace.
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    #: Join entries buffered in memory before a checkpoint writes them (one table record per
    #: side); a checkpoint also comes before every ack, so at least once per tick.
    checkpoint_events: int = Field(default=5_000, ge=1)
    #: Standby copies of each table partition kept up to date by other workers (Faust's
    #: default is 1). A standby consumes every changelog record of the partitions it copies:
    #: with two workers each applied the other's state writes, 10-15% more CPU per event than
    #: one worker (docs/benchmarks.md). 0, as Kafka Streams' ``num.standby.replicas``: a
    #: partition that moves restores from its changelog instead, a slower failover, the same
    #: figures. Worth 1 when failover time matters more than CPU.
    standby_replicas: int = Field(default=0, ge=0)


class WindowSettings(_Frozen):
    """Event-time tumbling windows and the label join."""

    size_s: int = Field(default=300, ge=60, le=86_400)
    allowed_lateness_s: int = Field(default=60, ge=0)
    #: A model quiet on a partition this long (with nothing unread there) closes its windows
    #: on that partition; see docs/event-time.md.
    idle_partition_timeout_s: float = Field(default=30.0, gt=0)
    label_horizon_s: int = Field(default=7 * 86_400, ge=0)
    early_label_ttl_s: int = Field(default=3_600, ge=0)
    revision_interval_s: float = Field(default=10.0, gt=0)
    #: Windows that ended more than ``revision_slow_after_s`` (event time) before their
    #: model's newest prediction on a partition are revised once per
    #: ``revision_slow_interval_s`` of the wall clock, each at its own phase, the same on
    #: every partition (``PartitionStage._slow_turn``): labels days late change thousands of
    #: windows per interval, each revision a perf frame per partition and a merge in stage
    #: 2 (``load_tests/bench_revisions.py``). Their label messages wait for it to be acked.
    revision_slow_after_s: int = Field(default=3_600, ge=0)
    revision_slow_interval_s: float = Field(default=60.0, gt=0)
    #: Labels waiting for their prediction, per partition, before reading labels pauses (a
    #: backlog would otherwise let labels run far ahead of predictions and pile up here).
    max_early_labels: int = Field(default=10_000, ge=1)
    tick_interval_s: float = Field(default=1.0, gt=0)
    #: A partition whose progress marks (closed-through, horizon clock) have not moved for
    #: this long sends its progress frame this often instead of on every tick (frames go
    #: from every partition to every partition: half an idle worker's CPU with 4
    #: partitions). A window that waits for such a partition's caught-up time may wait up
    #: to this much longer (docs/event-time.md). 0: on every tick.
    quiet_progress_s: float = Field(default=5.0, ge=0)


class ModelSettings(_Frozen):
    """Per-model choices; models not listed get the defaults."""

    task: Literal["binary", "multiclass", "regression"] = "binary"
    positive_label: str | int | bool = 1
    protected_attribute: str | None = None
    #: Fairness: a group of the protected attribute counts once it has this many predictions
    #: (parity, impact) or labelled positives (equal opportunity); see docs/metrics.md.
    min_group_size: int = Field(default=30, ge=1)
    drift_methods: dict[str, str] = Field(default_factory=dict)
    drift_thresholds: dict[str, float] = Field(default_factory=dict)
    reference_path: Path | None = None
    #: Start (epoch ms) of a window whose events become the model's reference once it closes.
    reference_window_start: int | None = None
    #: This model's allowed lateness (event time after a window's end during which its events
    #: still count on time); None: ``windows.allowed_lateness_s``.
    allowed_lateness_s: int | None = Field(default=None, ge=0)


class MetricsSettings(_Frozen):
    """What each window computes."""

    segments: tuple[str, ...] = ()
    segment_cap: int = Field(default=20, ge=1)
    sample_capacity: int = Field(default=5_000, ge=10)
    min_sample_size: int = Field(default=30, ge=1)
    correction: Literal["none", "bonferroni", "bh"] = "bh"
    dataset_drift_share: float = Field(default=0.5, gt=0, le=1)
    # Label-free estimate (docs/metrics.md): band half-width in standard errors, and the
    # labelled reference rows needed before the reference's calibration is used.
    estimate_band_z: float = Field(default=3.0, gt=0)
    min_calibration_rows: int = Field(default=500, ge=1)
    #: Each reference feature's shares on the reference's bins, per window (segment all,
    #: family ``distribution``, for the report): about 30 rows per numeric feature and
    #: window; off to keep the store to the verdicts (docs/store.md).
    distribution_rows: bool = True
    models: dict[str, ModelSettings] = Field(default_factory=dict)

    def model(self, model_id: str) -> ModelSettings:
        return self.models.get(model_id, ModelSettings())

    def routed_segments(self) -> tuple[str, ...]:
        """The segment keys events are routed by: ``segments``, then every model's protected
        attribute (fairness needs its groups whether or not they are reported as segments;
        see :meth:`reported`)."""
        protected = sorted({m.protected_attribute for m in self.models.values()
                            if m.protected_attribute})
        return tuple(dict.fromkeys([*self.segments, *protected]))

    def reported(self, segment: str) -> bool:
        """Whether a segment's own rows are written: "all" and the configured keys' values;
        a protected attribute routed only for fairness is not."""
        key = segment.split("=", 1)[0] if "=" in segment else None
        return key is None or key in self.segments


class StoreSettings(_Frozen):
    """Where results go: ``embedded`` (chDB in a local folder), ``server`` (ClickHouse), or
    ``none`` (results stay on the results topic only, e.g. for consumers of their own)."""

    kind: Literal["embedded", "server", "none"] = "embedded"
    path: Path = Path(".data/chdb")
    url: SecretStr | None = None
    database: str = "tidewatch"
    batch_size: int = Field(default=5_000, ge=1)
    flush_interval_s: float = Field(default=1.0, gt=0)
    buffer_max_rows: int = Field(default=200_000, ge=1)
    retry_initial_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)


class AlertRule(_Frozen):
    """A threshold rule over result rows (docs/alerts.md).

    It selects the rows of a window with ``metric`` (and ``family``, ``feature``, ``segment``
    when given) and breaches when ``value op threshold``. ``source: drift`` reads the
    per-feature drift verdicts instead, with ``metric`` one of ``drifted`` (1/0),
    ``statistic``, ``p_value`` or ``p_value_adjusted``. ``feature: "*"`` and ``segment: "*"``
    make one alert per feature or segment; ``segment`` unset means the whole traffic
    (``all``). It fires after ``for_windows`` consecutive breaching windows and resolves
    after ``resolve_windows`` consecutive clear ones.
    """

    name: str
    metric: str
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float
    severity: Literal["info", "warning", "critical"] = "warning"
    model_id: str | None = None
    segment: str | None = None
    for_windows: int = Field(default=1, ge=1)
    resolve_windows: int = Field(default=2, ge=1)
    family: str | None = None
    feature: str | None = None
    source: Literal["metric", "drift"] = "metric"
    description: str = ""


class AlertSettings(_Frozen):
    """The alert evaluator and its default rules (docs/alerts.md, "Default rules")."""

    enabled: bool = True
    #: The built-in rules for every model (see stream/alerts/defaults.py); user ``rules``
    #: with the same name replace a default one.
    default_rules: bool = True
    #: One-sided two-proportion test of a window's accuracy against the reference's.
    performance_alpha: float = Field(default=0.001, gt=0, lt=1)
    #: A significant drop smaller than this (absolute accuracy) is not alerted on.
    min_drop: float = Field(default=0.02, ge=0, lt=1)
    #: Bernoulli CUSUM on the error stream: shift worth detecting (absolute error rate),
    #: alarm threshold (log-likelihood ratio) and cap (bounds the time to resolve).
    cusum_delta: float = Field(default=0.03, gt=0, lt=1)
    cusum_threshold: float = Field(default=12.0, gt=0)
    cusum_cap: float = Field(default=24.0, gt=0)
    #: Volume collapse: a window's count below this share of the trailing median.
    volume_ratio: float = Field(default=0.1, gt=0, lt=1)
    #: Label coverage collapse: coverage below this share of the trailing median.
    coverage_ratio: float = Field(default=0.1, gt=0, lt=1)
    #: Windows kept per alert for late revisions and out-of-order windows.
    history_windows: int = Field(default=32, ge=4)
    #: Dead-letter rate: when set, the default rule ``dead_letter_rate`` fires on a window
    #: whose ``ingest``/``rejected_share`` exceeds it (off by default: docs/alerts.md).
    dead_letter_share: float | None = Field(default=None, ge=0, lt=1)


class Settings(_Frozen):
    """Everything the worker, the SDK and the CLI read. Frozen: build a new one to change it.

    A plain pydantic model rather than pydantic-settings' ``BaseSettings``: :func:`load_settings`
    layers file, environment and overrides itself, so the precedence is in one readable place.
    """

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    worker: WorkerSettings = WorkerSettings()
    windows: WindowSettings = WindowSettings()
    metrics: MetricsSettings = MetricsSettings()
    store: StoreSettings = StoreSettings()
    rules: tuple[AlertRule, ...] = ()
    alerts: AlertSettings = AlertSettings()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.store.kind == "server" and self.store.url is None:
            raise ValueError("store.kind is 'server' but store.url is not set")
        return self


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_NOT_SETTINGS = frozenset({"TIDEWATCH_CONFIG", "TIDEWATCH_KAFKA_CACHE"})


def _env_overrides() -> dict[str, Any]:
    """Nested dict of ``TIDEWATCH_A__B=v`` variables, so they can win over the YAML file."""
    out: dict[str, Any] = {}
    for name, value in os.environ.items():
        # Not settings: the file's path, and the broker jars' cache of tools/kafka.
        if not name.startswith("TIDEWATCH_") or name in _NOT_SETTINGS:
            continue
        path = name[len("TIDEWATCH_") :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        # Lists and mappings may be YAML/JSON flow text: TIDEWATCH_METRICS__SEGMENTS=[country]
        node[path[-1]] = yaml.safe_load(value) if value[:1] in "[{" else value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (``path`` or ``$TIDEWATCH_CONFIG``), then environment, then overrides.

    Raises :class:`ConfigError` with the file name when the file is missing or invalid, so a
    typo in a deployment fails at start-up with a message that names it.
    """
    file_data: dict[str, Any] = {}
    path = path or os.environ.get("TIDEWATCH_CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"settings file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"settings file {path} must hold a mapping at the top level")
        file_data = loaded or {}
    merged = _deep_merge(_deep_merge(file_data, _env_overrides()), overrides)
    try:
        return Settings.model_validate(merged)
    except ValueError as exc:
        raise ConfigError(f"invalid settings ({path or 'defaults'}): {exc}") from exc
