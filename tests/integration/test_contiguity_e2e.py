"""BrokerReader on the real broker: where a partition starts, reading offset ranges, and
where a partition ends."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream.runtime.contiguity import BrokerReader

pytestmark = pytest.mark.integration


def test_start_offsets_and_ranges(bootstrap: str) -> None:
    topic, group = f"contig-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0)
    assert producer.flush(30) == 0

    reader = BrokerReader({"bootstrap.servers": bootstrap}, group, timeout_s=20)
    try:
        # Nothing committed: each partition's first offset.
        assert reader.start_offsets([(topic, 0), (topic, 1)]) == {(topic, 0): 0, (topic, 1): 0}
        records = reader.read(topic, 0, 3, 7)
        assert [(r.offset, r.key, r.value) for r in records] == [
            (o, b"k%d" % o, b"v%d" % o) for o in range(3, 7)]
        # A range past the end returns what exists (end of partition), not a hang.
        assert [r.offset for r in reader.read(topic, 0, 8, 12)] == [8, 9]

        committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        committer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        committer.close()
        assert reader.start_offsets([(topic, 0)]) == {(topic, 0): 5}

        # The end as the broker says now: what idleness is checked against.
        assert (reader.end_offset(topic, 0), reader.end_offset(topic, 1)) == (10, 0)
        producer.produce(topic, value=b"more", partition=1)
        assert producer.flush(30) == 0
        assert reader.end_offset(topic, 1) == 1
    finally:
        reader.close()
