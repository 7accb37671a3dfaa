"""The alert evaluator's I/O: one window record in, state changes out, in a safe order.

For each record of the windows topic (one window or revision of one model):

1. evaluate it against the model's alert state (:class:`ModelAlerts`, from the table);
2. send the state changes to the alert topic (keyed by fingerprint) and the ``concept``
   rows to the results topic, and await their delivery;
3. write the state changes to the store and flush it;
4. only then write the new state to the table; the agent acks the record once that
   write's changelog is delivered (:mod:`stream.runtime.durable`).

A crash anywhere before 4 replays the record on the old state: the same state changes are
computed again with the same ids (the store keeps one row per id; a subscriber recognises
the repeat by id). A crash after 4 replays nothing that was not stored. So no state change is
lost and none is recomputed differently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from stream.alerts.evaluator import ModelAlerts, window_of
from stream.alerts.messages import encode_alert
from stream.config import Settings
from stream.merge.sink import decode_window, encode_results
from stream.merge.stage import References
from stream.results import WindowResults
from stream.store import Store

log = logging.getLogger(__name__)


class AlertPublisher:
    """Evaluates window records and publishes what changed (see the module docstring)."""

    def __init__(self, settings: Settings, references: References,
                 state: MutableMapping[bytes, bytes], store: Store | None,
                 alert_topic: Any, results_topic: Any, stats: dict[str, int]) -> None:
        self.settings = settings
        self.references = references
        self.state = state
        self.store = store
        self.alert_topic = alert_topic
        self.results_topic = results_topic
        self.stats = stats
        for name in ("windows", "firing", "resolved", "stale", "concept_rows"):
            stats.setdefault(name, 0)

    async def handle(self, key: bytes, value: bytes) -> None:
        results = decode_window(value)
        window = window_of(results)
        if window is None:
            return
        model = ModelAlerts(self.state.get(key))
        reference = self.references.get(window.model_id, window.model_version)
        outcome = model.evaluate(results, self.settings, reference, int(time.time() * 1000))
        sent = [await self.alert_topic.send(key=alert.fingerprint.encode(),
                                            value=encode_alert(alert))
                for alert in outcome.alerts]
        rows = WindowResults((), tuple(outcome.rows))
        sent.extend([await self.results_topic.send(key=k, value=v)
                     for k, v in encode_results(rows)])
        for future in sent:
            await future  # delivered before the state that says "published" is stored
        if outcome.alerts and self.store is not None:
            await self.store.wait_for_capacity(len(outcome.alerts))
            self.store.write_alerts(outcome.alerts)
            await asyncio.to_thread(self.store.flush)
        for alert in outcome.alerts:
            log.info("alert %s: %s", alert.id, alert.message)
            self.stats[alert.state] += 1
        self.stats["windows"] += 1
        self.stats["stale"] += outcome.stale
        self.stats["concept_rows"] += len(outcome.rows)
        self.state[key] = model.to_bytes()
