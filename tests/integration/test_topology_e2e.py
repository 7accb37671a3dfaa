"""The whole topology on the real broker: real worker processes, real Kafka semantics.

Each test produces a stream with the SDK, runs ``tidewatch worker`` processes, reads the
results topic and compares the latest revision of every row with the offline computation
(:func:`stream.merge.offline.offline_results`) on the same events.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from stream.config import Settings
from stream.merge.offline import offline_results
from stream.merge.references import FileReferences
from stream.sdk.client import MonitorClient
from stream.topics import ensure_topics

from .workers import WorkerProcess, free_port, make_settings

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
FAST = {"size_s": 60, "allowed_lateness_s": 5, "idle_partition_timeout_s": 4,
        "revision_interval_s": 1, "tick_interval_s": 0.5}


def events(n: int, seed: int = 1, span_ms: int = 180_000,
           start: int = T0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import random

    rng = random.Random(seed)
    preds, labels = [], []
    for i in range(n):
        ts = start + i * span_ms // n
        p = rng.random()
        preds.append({"request_id": f"s{seed}-{i}", "model_id": "m", "model_version": "v1",
                      "timestamp": ts,
                      "features": {"x": round(rng.gauss(0, 1), 6), "c": rng.choice("abc")},
                      "prediction": int(p > 0.5), "probability": round(p, 6),
                      "segments": {"country": rng.choice(["DE", "FR", "US"])},
                      "latency_ms": round(rng.random() * 20, 3)})
        if rng.random() < 0.75:
            labels.append({"request_id": f"s{seed}-{i}", "model_id": "m",
                           "timestamp": ts + 500, "label": int(rng.random() < p)})
    return preds, labels


def ident(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc["model_id"], doc["model_version"], doc["segment"], doc["window_start"],
            doc.get("family", "drift"), doc.get("metric", ""), doc["feature"])


class ResultsReader:
    """Follows the results topic; keeps the latest revision of every row."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{time.time()}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.subscribe([topic])
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.records = 0

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            for doc in orjson.loads(msg.value()):  # one record per window
                if doc.get("family") == "concept":
                    continue  # the alert evaluator's rows (stream.alerts), not stage 2's
                doc.pop("kind")
                doc.pop("computed_at")
                for name in ("statistic", "value"):
                    if isinstance(doc.get(name), str):
                        doc[name] = float(doc[name])
                self.records += 1
                key = ident(doc)
                if key not in self.rows or self.rows[key]["revision"] <= doc["revision"]:
                    self.rows[key] = doc

    def close(self) -> None:
        self.consumer.close()


def expected(settings: Settings, preds: list[dict[str, Any]], labels: list[dict[str, Any]],
             references: FileReferences | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    res = offline_results(preds, labels, settings, references or FileReferences(settings))
    out = {}
    for row in [*res.drift, *res.metrics]:
        doc = asdict(row)
        doc.pop("computed_at")
        out[ident(doc)] = doc
    return out


def differences(got: dict[tuple[Any, ...], Any], want: dict[tuple[Any, ...], Any],
                subset: bool = False) -> list[str]:
    """What differs; with ``subset``, rows that ``want`` does not name are not compared."""
    out = [f"missing {k}" for k in want if k not in got]
    out += [] if subset else [f"unexpected {k}" for k in got if k not in want]
    for key, doc in want.items():
        if key in got and got[key] != pytest.approx(doc, nan_ok=True):
            out.append(f"{key}: got {got[key]} want {doc}")
    return out


def wait_for_results(reader: ResultsReader, want: dict[tuple[Any, ...], Any],
                     workers: list[WorkerProcess], timeout: float = 150,
                     subset: bool = False) -> list[str]:
    deadline = time.monotonic() + timeout
    diff: list[str] = ["nothing read"]
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.proc.poll() is None, worker.log_path.read_text()[-3000:]
        reader.poll(2)
        diff = differences(reader.rows, want, subset)
        if not diff:
            return diff
    return diff


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    preds, _ = events(400, seed=99)
    path = tmp_path / "reference.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in preds))
    return path


def produce(settings: Settings, preds: list[dict[str, Any]],
            labels: list[dict[str, Any]]) -> None:
    """Labels before, together with, and long after their predictions."""
    third = len(labels) // 3
    with MonitorClient.from_settings(settings, batch_size=50) as client:
        for label in labels[:third]:
            client.log_label(label)
        for i, prediction in enumerate(preds):
            client.log_prediction(prediction)
            if i % 3 == 0 and third + i // 3 < 2 * third:
                client.log_label(labels[third + i // 3])
    time.sleep(6)  # past the idle timeout: windows close before these labels come
    with MonitorClient.from_settings(settings, batch_size=50) as client:
        for label in labels[2 * third:]:
            client.log_label(label)


@pytest.mark.parametrize(("partitions", "workers"), [
    (1, 1),
    (4, 2),
])
def test_stream_results_equal_offline(bootstrap: str, tmp_path: Path, reference: Path,
                                      partitions: int, workers: int) -> None:
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": partitions}, windows=FAST,
        store={"kind": "none"},
        metrics={"segments": ["country"], "sample_capacity": 200, "min_sample_size": 10,
                 "models": {"m": {"reference_path": str(reference),
                                  "protected_attribute": "country"}}})
    ensure_topics(settings)
    preds, labels = events(1_500, seed=7)
    want = expected(settings, preds, labels)
    procs = [WorkerProcess(config, settings, name=f"w{i}",
                           web_port=free_port() if i else None) for i in range(workers)]
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    try:
        for proc in procs:
            proc.wait_until(lambda s: s is not None, what="worker web server")
        time.sleep(3)  # let the group settle on its assignment
        produce(settings, preds, labels)
        diff = wait_for_results(reader, want, procs)
        assert not diff, "\n".join([*diff[:20], *(p.diagnose() for p in procs)])
        # The tail check (stream.runtime.contiguity) relies on reading the Kafka client's position
        # from Faust's internals: it must still be there.
        for proc in procs:
            positions = (proc.stats() or {})["offsets"]["positions"]
            preds_at = {k: v for k, v in positions.items()
                        if k.startswith(settings.topics.predictions)}
            assert preds_at, positions
            assert all(v["client_position"] == v["highwater"] == v["next"]
                       for v in preds_at.values()), preds_at
    finally:
        reader.close()
        for proc in procs:
            proc.stop()


def late_counts(worker: WorkerProcess) -> str:
    """What the worker counted as late or duplicate: the first thing to check on a diff."""
    stats = worker.stats() or {}
    keep = ("late_predictions", "duplicate_predictions", "duplicate_labels", "closed_through")
    return orjson.dumps({p: {k: v for k, v in s.items() if k in keep}
                         for p, s in stats.get("partitions", {}).items()}).decode()


@pytest.mark.parametrize("table_store", ["memory://", "rocksdb://"])
def test_sigkill_mid_stream_loses_and_doubles_nothing(bootstrap: str, tmp_path: Path,
                                                      table_store: str) -> None:
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 4}, windows=FAST, store={"kind": "none"},
        worker={"table_store": table_store},
        metrics={"segments": ["country"], "sample_capacity": 100, "min_sample_size": 10})
    ensure_topics(settings)
    preds, labels = events(6_000, seed=21, span_ms=240_000)
    want = expected(settings, preds, labels)
    counts = {k: v for k, v in want.items() if k[4] == "service" and k[5] == "count"}
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    chunks = 4
    size = len(preds) // chunks

    def produce_chunk(chunk: int) -> None:
        with MonitorClient.from_settings(settings, batch_size=25) as client:
            for prediction in preds[chunk * size:(chunk + 1) * size]:
                client.log_prediction(prediction)
            for label in labels:
                if chunk * size <= int(label["request_id"].split("-")[1]) < (chunk + 1) * size:
                    client.log_label(label)

    worker = WorkerProcess(config, settings, name="w0", data_slot="host")
    try:
        produce_chunk(0)
        for chunk in range(1, chunks):  # kill at different points of the stream
            floor = 300 * chunk
            worker.wait_until(lambda s, floor=floor: sum(s["valid"].values()) > floor,
                              what="some progress")
            time.sleep(0.3 * (chunk - 1))
            # The next events are in Kafka before the kill, so the restarted worker always
            # has a backlog: no quiet gap in which idleness would (rightly) close a window
            # and make the next chunk's events for it late, which would be timing, not loss.
            produce_chunk(chunk)
            worker.kill()
            worker = WorkerProcess(config, settings, name=f"w{chunk}", data_slot="host")
        diff = wait_for_results(reader, counts, [worker], timeout=200, subset=True)
        assert not diff, "\n".join([*diff[:20], late_counts(worker), worker.diagnose()])
        diff = wait_for_results(reader, want, [worker], timeout=60)
        assert not diff, "all rows, not only counts, match:\n" + "\n".join(diff[:20])
    finally:
        reader.close()
        worker.stop()


def test_late_events_are_counted_not_lost_and_do_not_reopen(bootstrap: str,
                                                            tmp_path: Path) -> None:
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 2}, windows=FAST, store={"kind": "none"},
        metrics={"min_sample_size": 10})
    ensure_topics(settings)
    preds, _ = events(400, seed=51, span_ms=120_000)  # windows T0 and T0 + 60 s
    # Far-future events (ten minutes on) push every partition's watermark past both windows.
    pusher = [dict(preds[0], request_id=f"push-{i}", timestamp=T0 + 600_000 + i)
              for i in range(60)]
    late = [dict(preds[0], request_id=f"late-{i}", timestamp=T0 + 1_000 + i) for i in range(25)]
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    worker = WorkerProcess(config, settings)
    try:
        with MonitorClient.from_settings(settings) as client:
            for event in [*preds, *pusher]:
                client.log_prediction(event)
        worker.wait_until(lambda s: s["valid"].get("prediction", 0) >= 460, what="consumed")
        time.sleep(2)
        with MonitorClient.from_settings(settings) as client:
            for event in late:
                client.log_prediction(event)
        first = sum(1 for e in preds if e["timestamp"] < T0 + 60_000)
        want_count = {("m", "v1", "all", T0, "service", "count", ""): first}
        want_late = {("m", "v1", "all", T0, "service", "late_events", ""): 25.0}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            reader.poll(1)
            got = {k: reader.rows[k]["value"] for k in [*want_count, *want_late]
                   if k in reader.rows}
            if got == {**want_count, **want_late}:
                break
        assert got == {**want_count, **want_late}
        stats = worker.stats()
        assert stats is not None
        late_total = sum(p.get("late_predictions", 0) for p in stats["partitions"].values())
        assert late_total == 25, "counted once each, in their own window"
    finally:
        reader.close()
        worker.stop()


def _set_topic_config(bootstrap: str, topic: str, name: str, value: str | None) -> None:
    """Set (or, with None, remove) one topic config on the broker."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry(name, value or "", incremental_operation=op)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def small_stream(bootstrap: str, tmp_path: Path, seed: int,
                 **worker: Any) -> tuple[Settings, Path, dict[tuple[Any, ...], Any]]:
    """Two partitions, 400 predictions over two minutes and their labels, produced; returns
    the settings, their file, and the rows the offline computation gives."""
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 2}, windows=FAST, store={"kind": "none"},
        worker=worker, metrics={"segments": ["country"], "min_sample_size": 10})
    ensure_topics(settings)
    preds, labels = events(400, seed=seed, span_ms=120_000)
    with MonitorClient.from_settings(settings) as client:
        for event in preds:
            client.log_prediction(event)
        for label in labels:
            client.log_label(label)
    return settings, config, expected(settings, preds, labels)


def exit_code(worker: WorkerProcess, timeout: float, otherwise: str) -> tuple[int, str]:
    """The worker's exit code and log, or an AssertionError saying ``otherwise``."""
    try:
        code = worker.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{otherwise}:\n" + worker.log_path.read_text()[-3000:]) from None
    return code, worker.log_path.read_text()


def assert_delivers_every_row(reader: ResultsReader, want: dict[tuple[Any, ...], Any],
                              worker: WorkerProcess) -> None:
    diff = wait_for_results(reader, want, [worker], timeout=120)
    assert not diff, "\n".join([*diff[:20], late_counts(worker)])


def test_a_failing_agent_stops_the_worker_and_a_restart_loses_nothing(
        bootstrap: str, tmp_path: Path) -> None:
    """The broker refuses every result (the results topic's message size limit is set below
    any row): stage 2 cannot deliver, so it must not ack. The worker exits non-zero rather
    than have Faust restart the agent in place (which acks past the failed message). Once
    the topic is fixed, a new worker delivers every row, equal to the offline computation."""
    settings, config, want = small_stream(bootstrap, tmp_path, seed=61)
    results_topic = f"{settings.worker.app_id}-results"
    _set_topic_config(bootstrap, results_topic, "max.message.bytes", "64")
    worker = WorkerProcess(config, settings, name="w0")
    reader = ResultsReader(bootstrap, results_topic)
    try:
        code, log = exit_code(worker, 150, "the worker kept running with a failing agent")
        assert code != 0, log[-3000:]
        assert "stage2_agent]: Crashed reason=MessageSizeTooLargeError" in log, log[-3000:]
        # The crash stops the worker through on_stop: its stop is bounded too (point 13).
        assert "worker stopping: the worker must stop within 20 s" in log, log[-3000:]
        _set_topic_config(bootstrap, results_topic, "max.message.bytes", None)
        worker = WorkerProcess(config, settings, name="w1")
        assert_delivers_every_row(reader, want, worker)
    finally:
        reader.close()
        worker.stop()


# Loaded by the worker's interpreter at start (a sitecustomize module on PYTHONPATH): Faust's
# consumer stop blocks the event loop for an hour, the way a stop hung in CI.
HANG_ON_STOP = """
import time
from faust.transport.drivers.aiokafka import Consumer

async def _hang(self):
    time.sleep(3600)

Consumer.on_stop = _hang
"""


def test_a_stop_that_hangs_ends_the_worker_and_a_restart_loses_nothing(
        bootstrap: str, tmp_path: Path) -> None:
    """A worker whose stop hangs (its event loop blocked) must still exit, with code 70,
    once ``worker.shutdown_timeout_s`` has passed; a new worker then delivers every row."""
    settings, config, want = small_stream(bootstrap, tmp_path, seed=62, shutdown_timeout_s=5)
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "sitecustomize.py").write_text(HANG_ON_STOP)
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    worker = WorkerProcess(config, settings, name="w0", extra_env={"PYTHONPATH": str(hang)})
    try:
        deadline = time.monotonic() + 120
        while not reader.rows and time.monotonic() < deadline:
            assert worker.proc.poll() is None, worker.log_path.read_text()[-3000:]
            reader.poll(1)
        assert reader.rows, "the worker delivered nothing"
        worker.proc.terminate()
        code, log = exit_code(worker, 60, "the worker's stop hung past its bound")
        assert code == 70, log[-3000:]
        assert "stopping took more than 5 s; exiting now (code 70)" in log, log[-3000:]
        worker = WorkerProcess(config, settings, name="w1")
        assert_delivers_every_row(reader, want, worker)
    finally:
        reader.close()
        worker.stop()
