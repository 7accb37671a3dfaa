"""Decoding and validation: every malformed input is rejected with a reason, never raised."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from stream.errors import ValidationError
from stream.events import (
    REASONS,
    decode_message,
    parse_timestamp,
    validate_label,
    validate_prediction,
)

MAX = 64 * 1024


def prediction(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "request_id": "r-1", "model_id": "fraud.v2", "model_version": "2024-01",
        "timestamp": "2024-05-01T12:00:00.250Z",
        "features": {"amount": 12.5, "country": "DE", "new": True, "coupon": None},
        "prediction": 1, "probability": 0.75, "segments": {"country": "DE"},
        "latency_ms": 3.2,
    }
    event.update(overrides)
    return event


def label(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"request_id": "r-1", "model_id": "fraud.v2",
                             "timestamp": 1714564800000, "label": 0}
    event.update(overrides)
    return event


def test_valid_prediction_is_normalised() -> None:
    out = validate_prediction(prediction())
    assert out["timestamp"] == 1714564800250
    assert out["model_version"] == "2024-01"
    bare = prediction()
    del bare["model_version"]
    assert validate_prediction(bare)["model_version"] == ""


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-05-01T14:00:00+02:00", 1714564800000),
        ("2024-05-01 12:00:00.123456789z", 1714564800123),
        ("2024-05-01t12:00:00.999Z", 1714564800999),
    ],
)
def test_rfc3339_timestamps(text: str, ms: int) -> None:
    assert parse_timestamp(text) == ms


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-05-01T12:00:00", "bad_timestamp"),  # no offset: ambiguous, refused
        ("2024-13-01T12:00:00Z", "bad_timestamp"),  # no month 13
        ("yesterday", "bad_timestamp"),
        (-1, "out_of_range"),
        (253402300800000, "out_of_range"),
        ("1969-12-31T23:59:59Z", "out_of_range"),
        (True, "wrong_type"),
        (1.5, "wrong_type"),
        (None, "wrong_type"),
    ],
)
def test_bad_timestamps(value: object, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_timestamp(value)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("request_id"), "missing_field"),
        (lambda e: e.pop("features"), "missing_field"),
        (lambda e: e.pop("prediction"), "missing_field"),
        (lambda e: e.update(request_id=5), "wrong_type"),
        (lambda e: e.update(request_id=""), "out_of_range"),
        (lambda e: e.update(request_id="x" * 257), "out_of_range"),
        (lambda e: e.update(model_id="fraud model"), "bad_model_id"),
        (lambda e: e.update(model_id=7), "wrong_type"),
        (lambda e: e.update(features=[1, 2]), "wrong_type"),
        (lambda e: e.update(features={"a": [1]}), "wrong_type"),
        (lambda e: e.update(features={"a": {"b": 1}}), "wrong_type"),
        (lambda e: e.update(features={"": 1}), "out_of_range"),
        (lambda e: e.update(features={f"f{i}": i for i in range(1001)}), "out_of_range"),
        (lambda e: e.update(prediction=None), "wrong_type"),
        (lambda e: e.update(prediction=[1]), "wrong_type"),
        (lambda e: e.update(probability=1.5), "out_of_range"),
        (lambda e: e.update(probability=True), "out_of_range"),
        (lambda e: e.update(scores={}), "out_of_range"),
        (lambda e: e.update(scores={"a": 2}), "wrong_type"),
        (lambda e: e.update(segments={"country": 1}), "wrong_type"),
        (lambda e: e.update(segments={"c": "x" * 129}), "wrong_type"),
        (lambda e: e.update(latency_ms=-1), "out_of_range"),
        (lambda e: e.update(latency_ms="3"), "wrong_type"),
        (lambda e: e.update(model_version=3), "wrong_type"),
        (lambda e: e.update(schema_version=2), "out_of_range"),
    ],
)
def test_invalid_predictions(mutate: Any, reason: str) -> None:
    assert reason in REASONS
    event = prediction()
    mutate(event)
    before = copy.deepcopy(event)
    with pytest.raises(ValidationError) as info:
        validate_prediction(event)
    assert info.value.reason == reason
    assert event == before, "a rejected event must be dead-lettered as it came"


def test_labels() -> None:
    assert validate_label(label(label="fraud"))["label"] == "fraud"
    assert validate_label(label(timestamp="2024-05-01T12:00:00Z"))["timestamp"] == 1714564800000
    for bad, reason in [(label(label=None), "wrong_type"), (label(label={"a": 1}), "wrong_type")]:
        with pytest.raises(ValidationError) as info:
            validate_label(bad)
        assert info.value.reason == reason
    missing = label()
    del missing["label"]
    with pytest.raises(ValidationError, match="label is required"):
        validate_label(missing)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"request_id": "r", "model_id": "m", "timest', "not_json"),  # truncated
        (b"\xff\xfe\x00garbage", "not_json"),  # not UTF-8
        (b'{"request_id": "r", "model_id": "m", "timestamp": 0, "features": {"a": NaN}, '
         b'"prediction": 1}', "not_json"),
        (b'{"request_id": "r", "model_id": "m", "timestamp": 0, "features": {"a": Infinity},'
         b' "prediction": 1}', "not_json"),
        (b'{"request_id": "r", "model_id": "m", "timestamp": 0, "features": {"a": 1e400}, '
         b'"prediction": 1}', "not_json"),  # beyond double range
        (b"", "not_json"),
        (b"null", "not_object"),
        (b'"just a string"', "not_object"),
        (b"[]", "empty_batch"),
        (b"x" * (MAX + 1), "too_large"),
    ],
)
def test_malformed_messages(raw: bytes, reason: str) -> None:
    decoded = decode_message(raw, "prediction", MAX)
    assert decoded.valid == []
    assert [r.reason for r in decoded.rejected] == [reason]
    assert decoded.rejected[0].raw == raw  # the original bytes, untouched
    assert decoded.rejected[0].index is None


def test_batch_keeps_good_events_and_rejects_bad_ones_by_index() -> None:
    good = [prediction(request_id=f"r{i}") for i in range(3)]
    bad = prediction(probability=7)
    raw = orjson.dumps([good[0], bad, good[1], 42, good[2]])
    decoded = decode_message(raw, "prediction", MAX)
    assert [e["request_id"] for e in decoded.valid] == ["r0", "r1", "r2"]
    assert [(r.index, r.reason) for r in decoded.rejected] == [(1, "out_of_range"),
                                                              (3, "not_object")]
    assert orjson.loads(decoded.rejected[0].raw) == bad
    assert decoded.rejected[1].raw == b"42"


def test_label_kind_uses_label_rules() -> None:
    decoded = decode_message(orjson.dumps(prediction()), "label", MAX)
    assert [r.reason for r in decoded.rejected] == ["missing_field"]


def test_huge_but_allowed_message_decodes() -> None:
    events = [prediction(request_id=f"r{i}", features={f"f{j}": j for j in range(50)})
              for i in range(200)]
    raw = orjson.dumps(events)
    assert len(raw) > MAX
    decoded = decode_message(raw, "prediction", len(raw))
    assert len(decoded.valid) == 200 and not decoded.rejected
