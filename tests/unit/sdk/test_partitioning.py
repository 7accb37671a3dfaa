"""murmur2 equals Kafka's Java implementation (vectors from Kafka's UtilsTest)."""

from __future__ import annotations

import pytest

from stream.sdk.partitioning import murmur2, partition_for


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("21", -973932308),
        ("foobar", -790332482),
        ("a-little-bit-long-string", -985981536),
        ("a-little-bit-longer-string", -1486304829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        ("abc", 479470107),
    ],
)
def test_murmur2_matches_kafka(key: str, expected: int) -> None:
    assert murmur2(key.encode()) == expected


def test_partition_is_positive_modulo() -> None:
    # murmur2("foobar") is negative: Kafka masks the sign bit before the modulo.
    assert partition_for("foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7
    assert {partition_for(f"k{i}", 4) for i in range(200)} == {0, 1, 2, 3}
    assert partition_for("é", 5) == partition_for("é".encode(), 5)
