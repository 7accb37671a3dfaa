"""``tidewatch alerts tail``: print alert state changes as they arrive on the alert topic.

A plain confluent-kafka consumer with its own group (nothing committed), so it never takes
messages from another subscriber. A message seen before (same id: a state change sent again
after a worker's restart) is printed once.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import TextIO

from confluent_kafka import Consumer

from stream.alerts.messages import decode_alert, to_document
from stream.config import Settings
from stream.topics import confluent_config


def tail_alerts(settings: Settings, *, from_beginning: bool = False, as_json: bool = False,
                limit: int | None = None, timeout_s: float | None = None,
                out: TextIO = sys.stdout) -> int:
    """Print alerts until ``limit`` were printed or ``timeout_s`` passed (both optional)."""
    import orjson

    consumer = Consumer({**confluent_config(settings.kafka),
                         "group.id": f"tidewatch-tail-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest" if from_beginning else "latest",
                         "enable.auto.commit": False})
    consumer.subscribe([settings.topics.alerts])
    seen: set[str] = set()
    printed = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while (limit is None or printed < limit) and (
                deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None or msg.value() is None:
                continue
            alert = decode_alert(msg.value() or b"")
            if alert.id in seen:
                continue
            seen.add(alert.id)
            line = orjson.dumps(to_document(alert)).decode() if as_json else alert.message
            print(line, file=out, flush=True)
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return printed
