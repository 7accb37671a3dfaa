"""Kafka connection settings for confluent-kafka clients, and topic creation.

The worker creates its topics at start-up with the configured partition count (Faust creates
only its internal topics). Predictions and labels must have the same partition count, or the
join by ``request_id`` would look on the wrong partition: :func:`ensure_topics` refuses that.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream.config import KafkaSettings, Settings
from stream.errors import ConfigError

#: Largest frame on the partials topic (a closed window's samples); see docs/metrics.md.
PARTIALS_MAX_BYTES = 64 * 1024 * 1024


def internal_topics(settings: Settings) -> dict[str, str]:
    """Names of the worker's own topics, derived from the app id so that two deployments on
    one cluster do not mix: ticks (co-partitioned with the inputs), partials, results, and
    windows (each window's rows in one record keyed by model, for the alert evaluator)."""
    app_id = settings.worker.app_id
    return {"ticks": f"{app_id}-ticks", "partials": f"{app_id}-partials",
            "results": f"{app_id}-results", "references": f"{app_id}-references",
            "windows": f"{app_id}-windows"}


def confluent_config(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings for the configured cluster (secrets unwrapped only here)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        conf["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        conf["sasl.username"] = kafka.sasl_username
    if kafka.sasl_password is not None:
        conf["sasl.password"] = kafka.sasl_password.get_secret_value()
    return conf


def partition_counts(admin: AdminClient, names: list[str], timeout: float = 10) -> dict[str, int]:
    """Partition count of each existing topic among ``names``."""
    meta = admin.list_topics(timeout=timeout)
    return {name: len(meta.topics[name].partitions) for name in names if name in meta.topics}


def ensure_topics(settings: Settings, timeout: float = 30) -> dict[str, int]:
    """Create missing topics; check that predictions and labels are co-partitioned.

    Returns the partition count per topic. Raises :class:`ConfigError` when the two input
    topics exist with different partition counts (the join would silently miss).
    """
    topics = settings.topics
    admin = AdminClient(confluent_config(settings.kafka))
    wanted = {
        topics.predictions: topics.partitions,
        topics.labels: topics.partitions,
        topics.dead_letter: topics.partitions,
        topics.alerts: 1,
    }
    internal = internal_topics(settings)
    # Created here, before Faust joins the group: a topic Faust creates itself is left out of
    # the first assignment, and ticks must be co-partitioned with the inputs from the start.
    for name in internal.values():
        wanted[name] = topics.partitions
    wanted[internal["references"]] = 1
    big = {"max.message.bytes": str(PARTIALS_MAX_BYTES)}
    configs = {internal["partials"]: big, internal["windows"]: big, internal["results"]: big,
               internal["references"]: {**big, "cleanup.policy": "compact"}}
    _create_missing(admin, wanted, configs, topics.replication_factor, timeout)
    counts = partition_counts(admin, list(wanted), timeout)
    if counts.get(topics.predictions) != counts.get(topics.labels):
        raise ConfigError(
            f"topics {topics.predictions!r} ({counts.get(topics.predictions)} partitions) and "
            f"{topics.labels!r} ({counts.get(topics.labels)}) must have the same partition "
            "count so that a prediction and its label meet on one partition"
        )
    return counts


def _create_missing(admin: AdminClient, wanted: dict[str, int],
                    configs: dict[str, dict[str, str]], replication: int,
                    timeout: float) -> None:
    existing = partition_counts(admin, list(wanted), timeout)
    missing = [
        NewTopic(name, num_partitions=count, replication_factor=replication,
                 config=configs.get(name, {}))
        for name, count in wanted.items()
        if name not in existing
    ]
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result(timeout)
            except Exception as exc:  # already created by a concurrent worker is fine
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise ConfigError(f"cannot create topic {name}: {exc}") from exc


def ensure_changelogs(settings: Settings, names: list[str], partitions: int,
                      timeout: float = 30) -> None:
    """Create the tables' changelog topics (compacted) before Faust subscribes to them.

    A changelog that Faust creates itself at start-up can sit in the consumer's metadata
    snapshot with 0 partitions until the next rebalance; the table's first write then fails
    with PartitionsMismatch and the worker stops. Seen on ``finals`` and ``alert_state`` in
    the alert tests and ``make demo``, on a freshly started broker."""
    admin = AdminClient(confluent_config(settings.kafka))
    compact = {"cleanup.policy": "compact"}
    _create_missing(admin, dict.fromkeys(names, partitions), dict.fromkeys(names, compact),
                    settings.topics.replication_factor, timeout)
