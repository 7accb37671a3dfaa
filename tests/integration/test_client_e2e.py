"""The SDK on the real broker: every event it reports delivered is in the topic.

Regression test for librdkafka's "implicitly acked" batches (see :mod:`stream.sdk.client`): with
several requests in flight, the first batches to a freshly created partition could fail with
NOT_LEADER_OR_FOLLOWER, a later batch succeed, and the earlier ones be reported delivered
without ever being written. It showed in about one round in ten of what the other tests and
the demo do (create the worker's eight topics, then produce at once), so the test does that
many times; without the fix it failed one run in three.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from stream.sdk.client import MonitorClient
from stream.topics import ensure_topics

from .workers import make_settings

pytestmark = pytest.mark.integration

ROUNDS, EVENTS, PARTITIONS = 15, 3_000, 4


def read_request_ids(bootstrap: str, topic: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
        consumer.assign(tps)
        total = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
        ids: list[str] = []
        read, deadline = 0, time.monotonic() + 30
        while read < total and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            read += 1
            ids.extend(event["request_id"] for event in orjson.loads(msg.value()))
        return ids
    finally:
        consumer.close()


def test_every_event_reported_delivered_is_in_a_fresh_topic(bootstrap: str,
                                                            tmp_path: Path) -> None:
    lost: dict[str, int] = {}
    for round_ in range(ROUNDS):
        (tmp_path / str(round_)).mkdir()
        settings, _ = make_settings(bootstrap, tmp_path / str(round_))
        ensure_topics(settings)
        topic = settings.topics.predictions
        # Produce at once, as a service does whose topic was just created.
        with MonitorClient.from_settings(settings, batch_size=100) as client:
            for i in range(EVENTS):
                client.log_prediction({"request_id": f"r{i}", "model_id": "m1",
                                       "timestamp": 1_700_000_000_000 + i,
                                       "features": {"x": float(i)}, "prediction": i % 2})
        assert client.sent_events == EVENTS  # and delivered: close() raises otherwise
        ids = read_request_ids(bootstrap, topic)
        missing = EVENTS - len(set(ids))
        if missing:
            lost[topic] = missing
        assert len(ids) == len(set(ids)), "an idempotent producer wrote an event twice"
    assert not lost, f"events reported delivered but not in the topic: {lost}"
