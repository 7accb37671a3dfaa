"""Ingest on the real broker: valid events consumed once, every malformed one dead-lettered."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from stream.errors import DeliveryError, ValidationError
from stream.sdk.client import MonitorClient
from stream.sdk.partitioning import partition_for
from stream.topics import ensure_topics

from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration


def prediction(i: int, **extra: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "model_id": "m1", "timestamp": 1_700_000_000_000 + i,
            "features": {"x": i * 0.5, "c": "abc"[i % 3]}, "prediction": i % 2,
            "probability": (i % 10) / 10, **extra}


MALFORMED: list[tuple[bytes, str]] = [
    (b'{"request_id": "t1", "model_id": "m1", "timestamp": 17', "not_json"),  # truncated
    (b"\xc3\x28\xa0\xa1 not utf-8", "not_json"),
    (b'{"request_id": "n", "model_id": "m1", "timestamp": 1, "features": {"a": NaN}, '
     b'"prediction": 1}', "not_json"),
    (b'{"request_id": "i", "model_id": "m1", "timestamp": 1, "features": {"a": -Infinity}, '
     b'"prediction": 1}', "not_json"),
    (orjson.dumps({"model_id": "m1", "timestamp": 1, "features": {}, "prediction": 1}),
     "missing_field"),
    (orjson.dumps(prediction(1, features="oops")), "wrong_type"),
    (orjson.dumps(prediction(2, timestamp="last tuesday")), "bad_timestamp"),
    (orjson.dumps([prediction(i) for i in range(2_000)]), "too_large"),  # > 64 KiB
    (b"[]", "empty_batch"),
]


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
        extra_deadline = time.monotonic() + 2  # anything beyond the expected count?
        while time.monotonic() < extra_deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def test_valid_consumed_once_malformed_dead_lettered(bootstrap: str, tmp_path: Path) -> None:
    settings, config = make_settings(bootstrap, tmp_path,
                                     worker={"max_message_bytes": 64 * 1024})
    ensure_topics(settings)
    worker = WorkerProcess(config, settings)
    try:
        with MonitorClient.from_settings(settings, batch_size=100) as client:
            for i in range(3_000):
                client.log_prediction(prediction(i))
            for i in range(0, 3_000, 2):
                client.log_label({"request_id": f"r{i}", "model_id": "m1",
                                  "timestamp": 1_700_000_100_000, "label": i % 3 == 0})
        with MonitorClient.from_settings(settings, batch_size=1) as single:
            for i in range(3_000, 3_050):
                single.log_prediction(prediction(i))
        raw = Producer({"bootstrap.servers": bootstrap})
        for value, _ in MALFORMED:
            raw.produce(settings.topics.predictions, key=b"bad", value=value)
        # A batch with two bad elements among good ones: the good ones must still count.
        mixed = [prediction(9_000), prediction(9_001, probability=3), prediction(9_002), 17]
        raw.produce(settings.topics.predictions, key=b"mixed", value=orjson.dumps(mixed))
        raw.produce(settings.topics.labels, key=b"l", value=orjson.dumps({"request_id": "x"}))
        raw.flush(30)

        expected_rejects = len(MALFORMED) + 3
        stats = worker.wait_until(
            lambda s: s["valid"].get("prediction", 0) >= 3_052
            and s["valid"].get("label", 0) >= 1_500
            and sum(s["rejected"].values()) >= expected_rejects,
            what="all events consumed",
        )
        time.sleep(2)  # nothing more may arrive: each valid event is consumed once
        stats = worker.stats()
        assert stats is not None
        assert stats["valid"] == {"prediction": 3_052, "label": 1_500}
        assert sum(stats["rejected"].values()) == expected_rejects

        letters = read_all(bootstrap, settings.topics.dead_letter, expected_rejects)
        assert len(letters) == expected_rejects
        by_value = {m.value(): dict(m.headers()) for m in letters}
        for value, reason in MALFORMED:
            headers = by_value.get(value if reason != "too_large" else value[: 512 * 1024])
            assert headers is not None, f"{reason} not dead-lettered"
            assert headers["reason"].decode() == reason
            assert headers["source-topic"].decode() == settings.topics.predictions
            assert int(headers["source-offset"]) >= 0
            assert headers["detail"]
        mixed_letters = [h for h in by_value.values() if "batch-index" in h]
        assert sorted(int(h["batch-index"]) for h in mixed_letters) == [1, 3]
        assert any(h["source-topic"].decode() == settings.topics.labels
                   and h["reason"] == b"missing_field" for h in by_value.values())
    finally:
        worker.stop()
    assert worker.proc.returncode is not None


def test_sdk_partitions_like_kafka_and_like_confluent_murmur2(bootstrap: str,
                                                               tmp_path: Path) -> None:
    settings, _ = make_settings(bootstrap, tmp_path)
    ensure_topics(settings)
    topic = settings.topics.labels
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    keys = [f"req-{i}" for i in range(200)]
    placed: dict[str, int] = {}

    def record(err: Any, msg: Any) -> None:
        assert err is None
        placed[msg.key().decode()] = msg.partition()

    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"{}", on_delivery=record)
    producer.flush(30)
    assert placed == {key: partition_for(key, 4) for key in keys}


def test_sdk_validates_and_surfaces_delivery_failures(bootstrap: str, tmp_path: Path) -> None:
    settings, _ = make_settings(bootstrap, tmp_path)
    ensure_topics(settings)
    with MonitorClient.from_settings(settings) as client, pytest.raises(
        ValidationError, match="prediction is required"
    ):
        client.log_prediction({"request_id": "a", "model_id": "m", "timestamp": 1,
                               "features": {}})
    missing = MonitorClient(bootstrap, predictions_topic="no-such-topic-here",
                            producer_config={"allow.auto.create.topics": False})
    with pytest.raises(DeliveryError, match="does not exist"):
        missing.log_prediction(prediction(1))
    missing.close()
    errors: list[Any] = []
    down = MonitorClient("127.0.0.1:9", batch_size=1, on_error=lambda e, m: errors.append(e),
                         producer_config={"message.timeout.ms": 1500, "log_level": 0})
    down.log_prediction(prediction(2))
    with pytest.raises(DeliveryError, match="1 messages failed"):
        down.flush(10)
    assert len(errors) == 1
    down.close()
