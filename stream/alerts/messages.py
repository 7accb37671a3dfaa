"""Alert messages: ids, text, and the JSON on the alert topic (``schemas/alert.v2``).

Every message is validated against the schema before it is sent: an alert is a contract
with the people and programs that subscribe, and a field that drifts from it should fail
here, in our tests, not in a subscriber.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson

from stream.errors import StreamError
from stream.events import SCHEMA_DIR
from stream.results import AlertRecord, Contributor

SCHEMA_VERSION = 2


class AlertMessageError(StreamError):
    """An alert message that does not follow ``schemas/alert.v2.schema.json``."""


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = orjson.loads((SCHEMA_DIR / f"alert.v{SCHEMA_VERSION}.schema.json").read_bytes())
    return jsonschema.Draft202012Validator(schema)


def alert_id(fingerprint: str, state: str, window_start: int) -> str:
    """Identifies one state change: the same change computed again gets the same id."""
    return hashlib.sha256(f"{fingerprint}|{state}|{window_start}".encode()).hexdigest()[:24]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def describe(record: AlertRecord, context: str = "") -> str:
    """One paragraph a person can act on: what, where, how much, and where to look;
    ``context`` adds the figures behind a derived value (e.g. the accuracies compared)."""
    where = record.model_id + (f" {record.model_version}" if record.model_version else "")
    if record.segment and record.segment != "all":
        where += f", segment {record.segment}"
    what = record.metric + (f" of {record.feature}" if record.feature else "")
    verb = "breaches" if record.state == "firing" else "no longer breaches"
    text = (f"[{record.severity}] {record.rule} {record.state} for {where}: {what} = "
            f"{_fmt(record.value)} {verb} {record.op} {_fmt(record.threshold)} in window "
            f"{iso(record.window_start)}..{iso(record.window_end)}")
    if context:
        text += f" ({context})"
    if record.contributors:
        parts = [f"{c.name} ({_fmt(c.value)}{', ' + c.detail if c.detail else ''})"
                 for c in record.contributors]
        text += "; look first at: " + "; ".join(parts)
    return text


def to_document(record: AlertRecord) -> dict[str, Any]:
    doc = record.as_dict()
    doc["contributors"] = [{"name": c.name, "value": c.value, "detail": c.detail}
                           for c in record.contributors]
    return doc


def validate(doc: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        raise AlertMessageError(f"alert message invalid: {errors[0].message} at "
                                f"{list(errors[0].path)}")


def encode_alert(record: AlertRecord) -> bytes:
    """The message value; raises :class:`AlertMessageError` if it breaks the schema."""
    doc = to_document(record)
    validate(doc)
    return orjson.dumps(doc)


def decode_alert(value: bytes) -> AlertRecord:
    doc = orjson.loads(value)
    validate(doc)
    doc["contributors"] = tuple(Contributor(**c) for c in doc["contributors"])
    return AlertRecord(**doc)
