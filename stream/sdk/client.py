"""Producer SDK for the services that log predictions and labels.

Why batches: a Python consumer spends most of its time on per-message overhead, so the SDK
packs events that share a partition into one message holding a JSON array. It picks the
partition itself with Kafka's murmur2 (:mod:`stream.sdk.partitioning`), the same function the
worker's side uses, so a prediction and its label always meet on one partition.

Failures are never silent: delivery errors are counted, passed to ``on_error`` if given, and
raised by :meth:`MonitorClient.flush` as :class:`~stream.errors.DeliveryError`. ``flush`` runs at
interpreter exit too.

Why one request in flight: librdkafka's idempotent producer (2.16) with up to five requests in
flight per connection can report as delivered batches that the broker never wrote. When the
first batches to a partition fail (``NOT_LEADER_OR_FOLLOWER``, common on a freshly created topic)
and a later batch succeeds, librdkafka counts the earlier ones "implicitly acked" (debug log
``IMPLICITACK``), hands them to the delivery callback without error, with offset -1, and
never retries them. We lost the first 100-400 events of a partition in about one run in ten
that way (``tests/integration/test_client_e2e.py``). With one request in flight a failed batch
is retried before the next one is sent; producing measured the same speed (about 75-85k
events/s from one Python thread, either way).

Example::

    with MonitorClient("127.0.0.1:9092") as client:
        client.log_prediction({"request_id": "r1", "model_id": "fraud", "timestamp": 1700000000000,
                               "features": {"amount": 12.5}, "prediction": 1, "probability": 0.8})
        client.log_label({"request_id": "r1", "model_id": "fraud",
                          "timestamp": 1700000100000, "label": 0})
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from stream.config import Settings
from stream.errors import DeliveryError, ValidationError
from stream.events import validate_label, validate_prediction
from stream.sdk.partitioning import partition_for
from stream.topics import confluent_config

ErrorCallback = Callable[[KafkaError, Message], None]


@dataclass(slots=True)
class _Batch:
    parts: list[bytes] = field(default_factory=list)
    size: int = 2
    first_key: str = ""
    started: float = 0.0


class MonitorClient:
    """Logs prediction and label events to Kafka, batched per partition.

    Parameters
    ----------
    bootstrap:
        Kafka bootstrap servers.
    predictions_topic, labels_topic:
        Topic names; they must exist (the worker creates them) with equal partition counts.
    batch_size:
        Events per message at most; 1 sends one event per message.
    max_batch_bytes:
        Upper bound of one message's value, below the broker's ``message.max.bytes``.
    linger_ms:
        A partial batch is sent at the latest this long after its first event.
    validate:
        Check every event against the schema before sending (raises ValidationError).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        predictions_topic: str = "predictions",
        labels_topic: str = "ground_truth",
        batch_size: int = 500,
        max_batch_bytes: int = 900_000,
        linger_ms: int = 200,
        validate: bool = True,
        producer_config: Mapping[str, Any] | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # for keyed sends without an explicit partition
            "linger.ms": 5,
            "compression.type": "lz4",
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 1,  # see the module docstring
        }
        conf.update(producer_config or {})
        self._producer = Producer(conf)
        self._topics = {"prediction": predictions_topic, "label": labels_topic}
        self._batch_size = batch_size
        self._max_bytes = max_batch_bytes
        self._linger_s = linger_ms / 1000
        self._validate = validate
        self._on_error = on_error
        self._partitions: dict[str, int] = {}
        self._batches: dict[tuple[str, int], _Batch] = {}
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._failed = 0
        self.sent_events = 0
        self._closed = threading.Event()
        self._timer = threading.Thread(
            target=self._linger_loop, name="tidewatch-linger", daemon=True
        )
        self._timer.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> MonitorClient:
        """A client for the configured cluster and topics (credentials from settings)."""
        conf = confluent_config(settings.kafka)
        bootstrap = conf.pop("bootstrap.servers")
        conf.update(kwargs.pop("producer_config", {}))
        return cls(
            bootstrap,
            predictions_topic=settings.topics.predictions,
            labels_topic=settings.topics.labels,
            producer_config=conf,
            **kwargs,
        )

    # -- logging -------------------------------------------------------------------------------
    def log_prediction(self, event: Mapping[str, Any]) -> None:
        """Queue one prediction event (see ``schemas/prediction.v1.schema.json``)."""
        self._log("prediction", event)

    def log_label(self, event: Mapping[str, Any]) -> None:
        """Queue one ground-truth event (see ``schemas/label.v1.schema.json``)."""
        self._log("label", event)

    def _log(self, kind: str, event: Mapping[str, Any]) -> None:
        if self._closed.is_set():
            raise DeliveryError("the client is closed")
        if self._validate:
            checker = validate_prediction if kind == "prediction" else validate_label
            event = checker(dict(event))
        request_id = event.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ValidationError("missing_field", "request_id is required")
        payload = orjson.dumps(event)
        topic = self._topics[kind]
        if self._batch_size == 1:
            self._send(topic, None, request_id, payload)
            return
        partition = partition_for(request_id, self._partition_count(topic))
        with self._lock:
            batch = self._batches.get((topic, partition))
            if batch is not None and batch.size + len(payload) + 1 > self._max_bytes:
                self._send_batch(topic, partition)
                batch = None
            if batch is None:
                batch = self._batches[(topic, partition)] = _Batch(
                    first_key=request_id, started=time.monotonic()
                )
            batch.parts.append(payload)
            batch.size += len(payload) + 1
            if len(batch.parts) >= self._batch_size:
                self._send_batch(topic, partition)
        self._producer.poll(0)

    # -- sending -------------------------------------------------------------------------------
    def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            meta = self._producer.list_topics(topic, timeout=10)
            info = meta.topics.get(topic)
            if info is None or info.error is not None or not info.partitions:
                raise DeliveryError(f"topic {topic!r} does not exist; start the worker first")
            count = self._partitions[topic] = len(info.partitions)
        return count

    def _send_batch(self, topic: str, partition: int) -> None:
        batch = self._batches.pop((topic, partition))
        value = b"[" + b",".join(batch.parts) + b"]"
        self._send(topic, partition, batch.first_key, value, len(batch.parts))

    def _send(
        self, topic: str, partition: int | None, key: str, value: bytes, events: int = 1
    ) -> None:
        kwargs: dict[str, Any] = {"key": key.encode("utf-8"), "value": value,
                                  "on_delivery": self._delivered}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                break
            except BufferError:  # local queue full: serve callbacks and retry (backpressure)
                self._producer.poll(0.1)
        self.sent_events += events

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        self._failed += 1
        if len(self._errors) < 10:
            self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
        if self._on_error is not None:
            self._on_error(err, msg)

    def _linger_loop(self) -> None:
        while not self._closed.wait(max(self._linger_s / 2, 0.01)):
            now = time.monotonic()
            with self._lock:
                due = [k for k, b in self._batches.items() if now - b.started >= self._linger_s]
                for topic, partition in due:
                    self._send_batch(topic, partition)
            self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Send every queued event and wait for delivery; raise DeliveryError on any failure."""
        with self._lock:
            for topic, partition in list(self._batches):
                self._send_batch(topic, partition)
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryError(f"{remaining} messages not delivered within {timeout} s")
        if self._failed:
            failed, errors = self._failed, list(self._errors)
            self._failed, self._errors = 0, []
            raise DeliveryError(f"{failed} messages failed: {'; '.join(errors)}")

    def close(self, timeout: float = 30.0) -> None:
        """Flush and stop the linger thread; the client cannot be used afterwards."""
        if self._closed.is_set():
            return
        try:
            self.flush(timeout)
        finally:
            self._closed.set()
            self._timer.join(timeout=5)

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_at_exit(ref: weakref.ReferenceType[MonitorClient]) -> None:
    """Send what is still queued when the interpreter exits; failures are raised, not hidden."""
    client = ref()
    if client is not None:
        client.close(10)
