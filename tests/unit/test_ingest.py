"""Ingest routes rejects to the dead-letter sender with reason and source, and counts them."""

from __future__ import annotations

import asyncio

import orjson

from stream.events import Rejected
from stream.ingest.dead_letters import DLQ_MAX_VALUE, DeadLetter, Ingest, Source, dead_letter

GOOD = {"request_id": "r", "model_id": "m", "timestamp": 1, "features": {}, "prediction": 0}


def run(raw: bytes, topic: str = "preds") -> tuple[list[DeadLetter], Ingest, int]:
    sent: list[DeadLetter] = []

    async def send(letter: DeadLetter) -> None:
        sent.append(letter)

    ingest = Ingest({"preds": "prediction", "labels": "label"}, 1 << 20, send)
    decoded = asyncio.run(ingest.handle(raw, b"key", Source(topic, 3, 42)))
    return sent, ingest, len(decoded.valid)


def test_valid_batch_counts_and_sends_nothing() -> None:
    sent, ingest, valid = run(orjson.dumps([GOOD, GOOD]))
    assert (sent, valid) == ([], 2)
    assert ingest.stats.as_dict() == {"messages": {"preds": 1}, "valid": {"prediction": 2},
                                      "rejected": {}}


def test_reject_carries_reason_and_source() -> None:
    bad = dict(GOOD, latency_ms=-4)
    sent, ingest, valid = run(orjson.dumps([GOOD, bad]))
    assert valid == 1
    [letter] = sent
    headers = dict(letter.headers)
    assert headers["reason"] == b"out_of_range"
    assert headers["source-topic"] == b"preds"
    assert (headers["source-partition"], headers["source-offset"]) == (b"3", b"42")
    assert headers["batch-index"] == b"1"
    assert orjson.loads(letter.value) == bad
    assert letter.key == b"key"
    assert ingest.stats.rejected["out_of_range"] == 1


def test_whole_message_reject_keeps_original_bytes() -> None:
    raw = b"\x00\xff{not json"
    sent, _, _ = run(raw, topic="labels")
    assert sent[0].value == raw
    assert "batch-index" not in dict(sent[0].headers)
    assert dict(sent[0].headers)["reason"] == b"not_json"


def test_oversized_original_is_truncated_and_says_so() -> None:
    raw = b"x" * (DLQ_MAX_VALUE + 10)
    letter = dead_letter(Rejected("too_large", "big", raw), Source("t", 0, 1), None)
    headers = dict(letter.headers)
    assert len(letter.value) == DLQ_MAX_VALUE
    assert headers["truncated"] == b"1"
    assert headers["original-size"] == str(len(raw)).encode()
