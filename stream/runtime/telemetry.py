"""The worker's Prometheus metrics (``/metrics``), read at scrape time from the counters the
stages already keep (the same structures ``/stats`` shows), so the hot path pays nothing.

Counters are per worker process and count what it processed, replays included (after a
restart or a rebalance a partition's unacked messages are processed again: at least once).
A partition's stage-1 and stage-2 counters are kept after the partition is revoked
(:meth:`Telemetry.retire`), so the totals never go back while the process lives. Names and
labels are listed in ``docs/operations.md``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream.ingest.dead_letters import IngestStats

PREFIX: Final = "tidewatch_"
#: prometheus_client's ``CONTENT_TYPE_LATEST`` without ``charset=utf-8``, which aiohttp refuses
#: in a content type (the text format is UTF-8 by definition).
CONTENT_TYPE: Final = "text/plain; version=0.0.4"

#: Stage-1 counter name -> (metric, label name, label value).
_STAGE1: Final[dict[str, tuple[str, str, str]]] = {
    "duplicate_predictions": ("duplicate_events", "kind", "prediction"),
    "duplicate_labels": ("duplicate_events", "kind", "label"),
    "joined_labels": ("labels_joined", "arrival", "after_prediction"),
    "joined_early_labels": ("labels_joined", "arrival", "before_prediction"),
    "expired_early_labels": ("join_expired", "what", "label_without_prediction"),
    "expired_unlabelled": ("join_expired", "what", "prediction_without_label"),
    "late_predictions": ("late_predictions", "", ""),
    "early_labels": ("early_labels", "", ""),
}
_HELP: Final[dict[str, str]] = {
    "duplicate_events": "Events dropped as duplicates of a request_id already seen.",
    "labels_joined": "Labels joined to their prediction, by which came first.",
    "join_expired": "Join entries expired unmatched after the label horizon or early-label TTL.",
    "late_predictions": "Predictions after their window closed (count as late events).",
    "early_labels": "Labels that arrived before their prediction.",
}


def _split_tp(name: str) -> tuple[str, str]:
    """``"topic[3]" -> ("topic", "3")`` (the keys of the ``/stats`` positions)."""
    topic, _, rest = name.rpartition("[")
    return topic, rest.rstrip("]")


@dataclass(slots=True)
class Sources:
    """Where the figures live; the mappings are the app's own, read live at each scrape."""

    ingest: IngestStats
    stages: Mapping[int, Any]  # partition -> stream.windows.partition.PartitionStage
    merges: Mapping[int, Any]  # partition -> stream.merge.stage.MergeStage
    positions: Callable[[], dict[str, Any]]
    offsets: Mapping[str, int] = field(default_factory=dict)
    alerts: Mapping[str, int] = field(default_factory=dict)
    backlog: Callable[[], int] | None = None


class Telemetry(Collector):
    """A registry holding the worker's collector and the store-write histogram."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.store_write = Histogram(
            f"{PREFIX}store_write_seconds", "Time to store one batch of result rows "
            "(write and flush), as seen by the store agent.", registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.rows_stored = 0
        self._retired1: Counter[str] = Counter()
        self._retired2: Counter[str] = Counter()

    # ------------------------------------------------------------------ app hooks
    def retire(self, stage1: Any | None = None, merge: Any | None = None) -> None:
        """Keep a revoked partition's counters in the totals."""
        if stage1 is not None:
            self._retired1.update(stage1.counters)
        if merge is not None:
            self._retired2.update({"finalised": merge.finalised, "revisions": merge.revisions})

    def stored(self, rows: int, seconds: float) -> None:
        self.rows_stored += rows
        self.store_write.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ collector
    def collect(self) -> Iterator[Metric]:
        yield from self._ingest()
        yield from self._stage1()
        yield from self._stage2()
        yield from self._positions()
        yield from self._rest()

    def _ingest(self) -> Iterator[Metric]:
        stats = self.sources.ingest
        for name, doc, label, counts in (
            ("ingest_messages", "Kafka messages read from the input topics.", "topic",
             stats.messages),
            ("ingest_events", "Valid events (a batch message holds several).", "kind",
             stats.valid),
            ("ingest_rejected_events", "Events sent to the dead-letter topic, by reason.",
             "reason", stats.rejected),
        ):
            family = CounterMetricFamily(PREFIX + name, doc, labels=[label])
            for value, n in sorted(counts.items()):
                family.add_metric([value], n)
            yield family

    def _stage1(self) -> Iterator[Metric]:
        totals = Counter(self._retired1)
        for stage in list(self.sources.stages.values()):
            totals.update(stage.counters)
        families: dict[str, CounterMetricFamily] = {}
        for counter, (name, label, value) in _STAGE1.items():
            if name not in families:
                families[name] = CounterMetricFamily(PREFIX + name, _HELP[name],
                                                     labels=[label] if label else [])
            families[name].add_metric([value] if label else [], totals.get(counter, 0))
        yield from families.values()
        gauges = (
            ("open_windows", "Windows open in stage 1 (per model version and window).",
             "open_windows"),
            ("open_window_events", "Events held in open windows.", "open_events"),
            ("join_entries", "Join entries waiting for their label or prediction.",
             "join_entries_tracked"),
            ("early_labels_waiting", "Labels waiting for their prediction.",
             "early_labels_waiting"),
        )
        stats = {p: s.stats() for p, s in sorted(self.sources.stages.items())}
        for name, doc, key in gauges:
            family = GaugeMetricFamily(PREFIX + name, doc, labels=["partition"])
            for partition, figures in stats.items():
                family.add_metric([str(partition)], float(figures.get(key, 0) or 0))
            yield family

    def _stage2(self) -> Iterator[Metric]:
        totals = Counter(self._retired2)
        pending = GaugeMetricFamily(PREFIX + "merge_pending_windows",
                                    "Windows stage 2 waits to finalise.", labels=["partition"])
        for partition, merge in sorted(self.sources.merges.items()):
            totals.update({"finalised": merge.finalised, "revisions": merge.revisions})
            pending.add_metric([str(partition)], len(merge.partials))
        yield pending
        yield CounterMetricFamily(PREFIX + "windows_finalised", "Windows finalised (rows "
                                  "published) by stage 2.", value=totals["finalised"])
        yield CounterMetricFamily(PREFIX + "window_revisions", "Revisions of finalised "
                                  "windows (late labels or events).", value=totals["revisions"])

    def _positions(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(PREFIX + "consumer_lag_messages", "Partition end offset minus "
                                "the next offset the worker expects.",
                                labels=["topic", "partition"])
        quiet = GaugeMetricFamily(PREFIX + "partition_quiet_seconds", "Seconds since the "
                                  "partition's last message.", labels=["topic", "partition"])
        for name, pos in sorted(self.sources.positions().items()):
            labels = list(_split_tp(name))
            if pos.get("highwater") is not None and pos.get("next") is not None:
                lag.add_metric(labels, max(0, int(pos["highwater"]) - int(pos["next"])))
            if pos.get("quiet_s") is not None:
                quiet.add_metric(labels, float(pos["quiet_s"]))
        yield lag
        yield quiet
        offsets = CounterMetricFamily(PREFIX + "offset_repairs", "Offsets read beside Faust "
                                      "or skipped as redelivered (docs/delivery.md).",
                                      labels=["kind"])
        for kind, n in sorted(self.sources.offsets.items()):
            offsets.add_metric([kind], n)
        yield offsets

    def _rest(self) -> Iterator[Metric]:
        yield CounterMetricFamily(PREFIX + "store_rows", "Result rows handed to the store.",
                                  value=self.rows_stored)
        if self.sources.backlog is not None:
            yield GaugeMetricFamily(PREFIX + "store_backlog_rows", "Rows waiting in the "
                                    "store's write buffer.", value=self.sources.backlog())
        alerts = self.sources.alerts
        changes = CounterMetricFamily(PREFIX + "alert_changes", "Alert state changes "
                                      "published, by new state.", labels=["state"])
        for state in ("firing", "resolved"):
            changes.add_metric([state], alerts.get(state, 0))
        yield changes
        yield CounterMetricFamily(PREFIX + "alert_windows", "Windows the alert evaluator "
                                  "read.", value=alerts.get("windows", 0))
