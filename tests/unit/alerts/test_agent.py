"""The publisher's order: alerts and rows delivered, then the store, then the state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.alerts.agent import AlertPublisher
from stream.alerts.evaluator import ModelAlerts
from stream.alerts.messages import decode_alert
from stream.config import Settings
from stream.merge.sink import encode_window
from stream.metrics.reference import ReferenceProfile

from .helpers import window

REFERENCE = ReferenceProfile(3000, {}, {"accuracy": 1.0}, 3000)


class Refs:
    def get(self, model_id: str, model_version: str) -> ReferenceProfile | None:
        return REFERENCE


class Topic:
    """Records sends; delivery fails when ``fail`` is set."""

    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail, self.sent = log, name, fail, []

    async def send(self, key: bytes, value: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(RuntimeError("broker refused"))
        else:
            future.set_result(None)
            self.sent.append((key, value))
            self.log.append(self.name)
        return future


class Store:
    def __init__(self, log: list[str]) -> None:
        self.log, self.alerts = log, []

    async def wait_for_capacity(self, rows: int = 1) -> None:
        pass

    def write_alerts(self, alerts: Any) -> None:
        self.alerts.extend(alerts)
        self.log.append("store")

    def flush(self) -> None:
        self.log.append("flush")


class State(dict[bytes, bytes]):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.log.append("state")
        super().__setitem__(key, value)


def publisher(log: list[str], fail_alerts: bool = False) -> tuple[AlertPublisher, Any]:
    alerts, results = Topic(log, "alert", fail_alerts), Topic(log, "rows")
    store, state = Store(log), State(log)
    pub = AlertPublisher(Settings(windows={"size_s": 60}), Refs(), state, store,  # type: ignore[arg-type]
                         alerts, results, {})
    return pub, (alerts, results, store, state)


def test_state_is_written_after_delivery_and_store() -> None:
    log: list[str] = []
    pub, (alerts, _, store, state) = publisher(log)

    async def feed() -> None:
        for i, accuracy in enumerate([1.0, 1.0, 1.0, 0.9]):
            await pub.handle(b"m", encode_window(window(i, accuracy=accuracy)))

    asyncio.run(feed())
    last = log[log.index("alert"):]
    assert last[-3:] == ["store", "flush", "state"]
    assert "alert" in last and "rows" in last
    sent = [decode_alert(v) for _, v in alerts.sent]
    assert {a.rule for a in sent} == {"performance_drop", "concept_drift"}
    assert [k for k, _ in alerts.sent] == [a.fingerprint.encode() for a in sent]
    assert store.alerts == sent
    assert ModelAlerts(state[b"m"]).open_alerts()
    assert pub.stats["firing"] == 2 and pub.stats["windows"] == 4


def test_a_failed_delivery_leaves_the_state_as_it_was() -> None:
    log: list[str] = []
    pub, (_, _, store, state) = publisher(log, fail_alerts=True)

    async def feed() -> None:
        for i in range(3):
            await pub.handle(b"m", encode_window(window(i)))
        before = state[b"m"]
        with pytest.raises(RuntimeError):
            await pub.handle(b"m", encode_window(window(3, accuracy=0.9)))
        assert state[b"m"] == before  # replayed after the restart: fires then
        assert store.alerts == []

    asyncio.run(feed())
