"""Reference profiles: one per model, shared by every worker through a compacted topic.

A profile is built once (from a file with ``tidewatch reference set``, or by stage 2 from a
window chosen with ``metrics.models.<id>.reference_window_start``) and published, keyed by
model id, on ``<app_id>-references`` (compacted: the latest profile per model is kept). Each
worker reads the topic to its end before it starts, then follows it in a background thread,
so a new reference reaches every worker within about a second. A model with nothing on the
topic falls back to its ``reference_path`` file, profiled once; a model with neither gets no
drift rows, and still its quality, service and performance figures.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from stream.config import Settings
from stream.errors import ConfigError
from stream.metrics.reference import ReferenceProfile, segment_options
from stream.topics import PARTIALS_MAX_BYTES, confluent_config, internal_topics

log = logging.getLogger(__name__)


def publish_reference(settings: Settings, model_id: str, profile: ReferenceProfile) -> int:
    """Put ``profile`` on the references topic for ``model_id``; returns its size in bytes."""
    value = profile.to_bytes()
    producer = Producer({**confluent_config(settings.kafka),
                         "message.max.bytes": PARTIALS_MAX_BYTES})
    errors: list[str] = []
    producer.produce(internal_topics(settings)["references"], key=model_id.encode(),
                     value=value,
                     on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
    producer.flush(30)
    if errors:
        raise ConfigError(f"could not publish the reference of {model_id}: {errors[0]}")
    return len(value)


class TopicReferences:
    """The latest profile per model from the references topic, else the configured file."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = internal_topics(settings)["references"]
        self._raw: dict[str, bytes] = {}
        self._decoded: dict[str, tuple[bytes, ReferenceProfile]] = {}
        self._files: dict[str, ReferenceProfile | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30.0) -> None:
        """Read the topic to its end (so the first windows see existing references), then
        keep following it in a daemon thread."""
        self._consumer = Consumer({
            **confluent_config(self._settings.kafka),
            "group.id": f"{self._settings.worker.app_id}-references-reader",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": PARTIALS_MAX_BYTES,
        })
        meta = self._consumer.list_topics(self._topic, timeout=timeout)
        partitions = list(meta.topics[self._topic].partitions)
        tps = [TopicPartition(self._topic, p, 0) for p in partitions]
        self._consumer.assign(tps)
        deadline = time.monotonic() + timeout
        marks = {p: self._watermarks(p, deadline) for p in partitions}
        while time.monotonic() < deadline:
            done = all(marks[tp.partition][1] <= max(tp.offset, marks[tp.partition][0])
                       for tp in self._consumer.position(tps))  # compaction leaves gaps
            if done:
                break
            msg = self._consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                self._take(msg)
        self._thread = threading.Thread(target=self._follow, name="tidewatch-references",
                                        daemon=True)
        self._thread.start()

    def _watermarks(self, partition: int, deadline: float) -> tuple[int, int]:
        """Low and high offsets; a topic created a moment ago may not have a leader yet."""
        assert self._consumer is not None
        while True:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=5)
                return int(low), int(high)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _follow(self) -> None:
        assert self._consumer is not None
        while not self._stop.is_set():
            msg = self._consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                self._take(msg)

    def _take(self, msg: Any) -> None:
        key, value = msg.key(), msg.value()
        if key is None:
            return
        with self._lock:
            if value is None:  # a tombstone removes the model's reference
                self._raw.pop(key.decode(), None)
            else:
                self._raw[key.decode()] = value
        log.info("reference for %s: %d bytes", key.decode(), len(value or b""))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._consumer is not None:
            self._consumer.close()

    # ------------------------------------------------------------------ lookups
    def get(self, model_id: str, model_version: str) -> ReferenceProfile | None:
        with self._lock:
            raw = self._raw.get(model_id)
        if raw is not None:
            cached = self._decoded.get(model_id)
            if cached is None or cached[0] is not raw:
                cached = self._decoded[model_id] = (raw, ReferenceProfile.from_bytes(raw))
            return cached[1]
        return self._from_file(model_id)

    def _from_file(self, model_id: str) -> ReferenceProfile | None:
        if model_id not in self._files:
            model = self._settings.metrics.model(model_id)
            profile = None
            if model.reference_path is not None:
                profile = ReferenceProfile.from_file(
                    model.reference_path, model, **segment_options(self._settings.metrics))
                log.info("reference for %s: %d rows from %s", model_id, profile.rows,
                         model.reference_path)
            self._files[model_id] = profile
        return self._files[model_id]


class FileReferences(TopicReferences):
    """Only the configured files (no Kafka): for offline computation and tests."""

    def start(self, timeout: float = 30.0) -> None:  # pragma: no cover - nothing to start
        return None

    def put(self, model_id: str, profile: ReferenceProfile) -> None:
        """Use ``profile`` for ``model_id`` from now on."""
        with self._lock:
            self._raw[model_id] = profile.to_bytes()
