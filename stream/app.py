"""The Faust app: wires topics, the ingest agent and the web views; no logic of its own.

One agent reads both input topics. They are co-partitioned (same partition count, same
murmur2 partitioner), so partition *p* of both lands on the same worker and the join by
``request_id`` stays local. Concurrency stays at 1 (Faust can commit past an in-flight message
with more); parallelism comes from partitions and workers.
"""

from __future__ import annotations

import ssl
from typing import Any, Protocol

import faust
import orjson
from faust.web import Request, Response, View

from stream.config import Settings
from stream.events import EventKind
from stream.ingest import DeadLetter, Ingest, Source


class Pipeline(Protocol):
    """What the ingest agent hands valid events to (the join/window topology)."""

    async def on_events(
        self, kind: EventKind, events: list[dict[str, Any]], source: Source
    ) -> None: ...


class NullPipeline:
    """Consumes and drops: ingest alone (used before a topology is configured)."""

    async def on_events(
        self, kind: EventKind, events: list[dict[str, Any]], source: Source
    ) -> None:
        return None


def _broker_credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if not kafka.security_protocol.startswith("SASL"):
        return ssl.create_default_context() if kafka.security_protocol == "SSL" else None
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    return faust.SASLCredentials(
        username=kafka.sasl_username or "",
        password=password,
        mechanism=kafka.sasl_mechanism or "PLAIN",
        ssl_context=ssl.create_default_context()
        if kafka.security_protocol == "SASL_SSL" else None,
    )


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> faust.App:
    """Build the worker's Faust app for ``settings``."""
    worker = settings.worker
    app = faust.App(
        worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        broker_credentials=_broker_credentials(settings),
        store=worker.table_store,
        datadir=str(worker.data_dir),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        web_enabled=worker.web_enabled,
        web_port=worker.web_port,
        web_bind="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        consumer_max_fetch_size=8 * 1024 * 1024,
        producer_max_request_size=2 * 1024 * 1024,
        stream_buffer_maxsize=64,
    )
    topics = settings.topics
    inputs = app.topic(
        topics.predictions, topics.labels,
        key_serializer="raw", value_serializer="raw",
    )
    dead_letters = app.topic(topics.dead_letter, key_serializer="raw", value_serializer="raw")
    sink: Pipeline = pipeline or NullPipeline()

    async def send_dead_letter(letter: DeadLetter) -> None:
        await dead_letters.send(key=letter.key, value=letter.value, headers=letter.headers)

    ingest = Ingest(
        {topics.predictions: "prediction", topics.labels: "label"},
        worker.max_message_bytes,
        send_dead_letter,
    )
    app.ingest = ingest  # type: ignore[attr-defined]

    @app.agent(inputs, name="ingest", concurrency=1)
    async def ingest_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            source = Source(message.topic, message.partition, message.offset)
            decoded = await ingest.handle(event.value, message.key, source)
            if decoded.valid:
                await sink.on_events(ingest.kind_of(source.topic), decoded.valid, source)

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(orjson.dumps(ingest.stats.as_dict()),
                              content_type="application/json")

    return app
