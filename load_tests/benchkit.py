"""What the stream benchmarks share: a worker's config, the synthetic stream, a throttled
producer, a ``tidewatch worker`` process with its CPU and memory from ``/proc``, and the bare
confluent-kafka consumer they are compared with.

Everything here talks to the broker at ``TIDEWATCH_KAFKA__BOOTSTRAP`` (``local_kafka.py run``
exports it); the pure figures (percentiles, the table, the JSON) live in
:mod:`load_tests.bench_report`.
"""

from __future__ import annotations

import heapq
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stream.config import Settings, load_settings  # noqa: E402
from stream.sdk.client import MonitorClient  # noqa: E402
from stream.topics import confluent_config, ensure_topics  # noqa: E402

PY = sys.executable
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
WINDOWS = {"size_s": 60, "allowed_lateness_s": 60, "label_horizon_s": 600,
           "early_label_ttl_s": 300, "idle_partition_timeout_s": 5, "revision_interval_s": 10,
           "tick_interval_s": 1}
LABEL_SHARE, EARLY_SHARE = 0.5, 0.1  # labelled predictions; of those, labels sent early
EARLY_LEAD_S = 120  # an early label is sent this much event time before its prediction
MAX_DELAY_S = 120  # a late label comes 1..MAX_DELAY_S seconds of event time after


def pace(sent: int, rate: float, started: float) -> None:
    """Sleep while ``sent`` events are ahead of ``rate`` per second since ``started``."""
    ahead = sent / rate - (time.time() - started)
    if ahead > 0:
        time.sleep(ahead)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_tag() -> str:
    return uuid.uuid4().hex[:8]


def write_config(bootstrap: str, folder: Path, table_store: str | None = "memory://", *,
                 tag: str | None = None, name: str = "bench",
                 windows: dict[str, Any] | None = None,
                 partitions: int = 4) -> tuple[Settings, Path]:
    """A worker config in ``folder/name.yaml``; workers given the same ``tag`` share topics
    and app id (one consumer group), each with its own web port and data directory.
    ``table_store`` None leaves the worker's default."""
    tag = tag or new_tag()
    worker: dict[str, Any] = {"app_id": f"bench-{tag}", "data_dir": str(folder / name),
                              "web_port": free_port()}
    if table_store:
        worker["table_store"] = table_store
    doc = {
        "kafka": {"bootstrap": bootstrap},
        "topics": {"predictions": f"bpred-{tag}", "labels": f"blabels-{tag}",
                   "dead_letter": f"bdlq-{tag}", "alerts": f"balerts-{tag}",
                   "partitions": partitions},
        "worker": worker,
        "windows": windows or WINDOWS,
        "store": {"kind": "none"},
        "metrics": {"segments": ["country"]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_settings(path), path


# ---------------------------------------------------------------------------- the stream
def stream_events(n: int, event_rate: float, seed: int = 11) -> Any:
    """Yield ("prediction" | "label", event) in the order a live system would send them:
    ``n`` predictions at ``event_rate`` per second of event time from :data:`T0`, labels for
    about half of them (a tenth of those sent before their prediction)."""
    rng = random.Random(seed)
    step_ms = 1000 / event_rate
    lead = int(EARLY_LEAD_S * event_rate)
    pending: list[tuple[int, int, dict[str, Any]]] = []  # (due ts, seq, label) heap
    early: dict[int, int] = {}  # prediction index -> label, for labels sent early

    def label_of(i: int, ts: int) -> dict[str, Any]:
        return {"request_id": f"b-{i}", "model_id": "bench", "timestamp": ts,
                "label": int(rng.random() < 0.3)}

    for i in range(n + lead):
        ts = T0 + int(i * step_ms)
        ahead = i + lead  # decide now whether prediction `ahead` gets its label early
        if ahead < n and rng.random() < LABEL_SHARE * EARLY_SHARE:
            early[ahead] = 1
            yield "label", label_of(ahead, ts)
        if i >= n:
            continue
        while pending and pending[0][0] <= ts:
            yield "label", heapq.heappop(pending)[2]
        yield "prediction", prediction(i, ts, rng)
        if i not in early and rng.random() < LABEL_SHARE * (1 - EARLY_SHARE) / (
                1 - LABEL_SHARE * EARLY_SHARE):
            due = ts + rng.randint(1_000, MAX_DELAY_S * 1000)
            heapq.heappush(pending, (due, i, label_of(i, due)))
        early.pop(i, None)
    while pending:
        yield "label", heapq.heappop(pending)[2]


def prediction(i: int, ts: int, rng: random.Random, model: str = "bench",
               prefix: str = "b") -> dict[str, Any]:
    """One prediction with numeric, boolean, categorical and null features."""
    p = rng.random()
    device = ("ios", "android", "web")[i % 3]
    return {
        "request_id": f"{prefix}-{i}", "model_id": model, "model_version": "v1",
        "timestamp": ts,
        "features": {"amount": round(rng.lognormvariate(3.0, 1.0), 2),
                     "age": float(18 + i % 60), "device": device,
                     "is_new_user": p < 0.2, "coupon": None if p < 0.7 else "SPRING"},
        "prediction": int(p >= 0.5), "probability": round(p, 6),
        "segments": {"country": ("DE", "FR", "US", "BR")[i % 4], "device": device},
        "latency_ms": round(rng.random() * 30, 2),
    }



@dataclass
class Producer:
    """Sends :func:`stream_events` from a thread with the SDK; counts what it sent."""

    settings: Settings
    events: int  # predictions
    event_rate: float
    wall_rate: float  # events/s to throttle to; 0: as fast as possible
    batch_size: int = 500
    predictions: int = 0
    labels: int = 0
    started: float = 0.0
    finished: float = 0.0
    last_ts: int = 0
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="bench-producer", daemon=True)
        self.started = time.time()
        self.thread.start()

    def _run(self) -> None:
        try:
            with MonitorClient.from_settings(self.settings, batch_size=self.batch_size,
                                             validate=False) as client:
                for sent, (kind, event) in enumerate(
                        stream_events(self.events, self.event_rate), 1):
                    if kind == "prediction":
                        client.log_prediction(event)
                        self.predictions += 1
                        self.last_ts = event["timestamp"]
                    else:
                        client.log_label(event)
                        self.labels += 1
                    if self.wall_rate and sent % 100 == 0:
                        pace(sent, self.wall_rate, self.started)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        self.finished = time.time()

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    @property
    def sent(self) -> int:
        return self.predictions + self.labels


# ---------------------------------------------------------------------------- the worker
class Worker:
    """One ``tidewatch worker`` process; its log is beside its config."""

    def __init__(self, config: Path, settings: Settings) -> None:
        self.port = settings.worker.web_port
        self.log_path = config.with_suffix(".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([PY, "-m", "stream.cli", "worker", "--config",
                                          str(config)], cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT)

    def stats(self) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.port}/stats"
            with urllib.request.urlopen(url, timeout=5) as response:
                data: dict[str, Any] = orjson.loads(response.read())
                return data
        except OSError:
            return None

    def _status(self, key: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    def rss_mb(self) -> float:
        return self._status("VmRSS:")

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of the resident set (``VmHWM``): no sampling gaps."""
        return self._status("VmHWM:")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process (all its threads) so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited ({self.proc.returncode}); log tail:\n"
                               + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def consumed(stats: dict[str, Any]) -> int:
    """Valid events the worker has consumed (both input topics)."""
    return sum(stats.get("valid", {}).values())


def assigned_inputs(stats: dict[str, Any], topic: str) -> set[int]:
    """The partitions of ``topic`` the worker holds (from ``/stats`` offsets.positions)."""
    out = set()
    for name, pos in stats.get("offsets", {}).get("positions", {}).items():
        base, _, part = name.rpartition("[")
        if base == topic and pos.get("assigned"):
            out.add(int(part.rstrip("]")))
    return out


def wait_ready(workers: list[Worker], topic: str, partitions: int,
               timeout: float = 120) -> None:
    """Until the workers' web servers answer and together hold every partition of ``topic``
    exactly once (the rebalance is over), twice in a row."""
    deadline = time.monotonic() + timeout
    stable = 0
    while stable < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("workers not ready (web server or partition assignment)")
        for w in workers:
            w.check()
        held = [assigned_inputs(s, topic) if (s := w.stats()) else None for w in workers]
        ok = all(h for h in held) and sum(len(h or ()) for h in held) == partitions and len(
            set().union(*(h or set() for h in held))) == partitions
        stable = stable + 1 if ok else 0
        time.sleep(1)


#: The worker's Faust tables (stream/runtime/app.py); their changelogs are created before it starts.
TABLES = ("joins", "progress", "perf", "finals")


def ensure_bench_topics(settings: Settings) -> None:
    """The worker's topics, and its tables' changelogs too.

    Why the changelogs: on a fresh app id, the worker's first start crashed in about half of
    our runs on this machine: Faust creates a changelog topic, its next metadata read does not
    have it yet ("Topic ...-finals-changelog not found in cluster metadata"), and stage 2's
    table recovery then fails with ``PartitionsMismatch`` (0 partitions) some seconds after
    the partitions were assigned. A restarted worker finds the topic; creating it beforehand
    (compacted, like Faust's) avoids the crash. A benchmark workaround for a start-up bug,
    not a fix of it.
    """
    ensure_topics(settings)
    admin = AdminClient(confluent_config(settings.kafka))
    names = [f"{settings.worker.app_id}-{t}-changelog" for t in TABLES]
    futures = admin.create_topics([
        NewTopic(n, num_partitions=settings.topics.partitions,
                 replication_factor=settings.topics.replication_factor,
                 config={"cleanup.policy": "compact"}) for n in names])
    for future in futures.values():
        try:
            future.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def start_workers(configs: list[tuple[Settings, Path]], retries: int = 1
                  ) -> tuple[list[Worker], int]:
    """Start a worker per config and wait until they hold the partitions; (workers, restarts).

    A worker that dies while starting is started again (``retries`` times), and the restart
    is counted in the figures: on a fresh broker Faust sometimes asks for a changelog topic
    its own start-up just created before the metadata has it ("not found in cluster
    metadata", then ``PartitionsMismatch``); the second start finds the topic.
    """
    settings = configs[0][0]
    for attempt in range(retries + 1):
        workers = [Worker(path, s) for s, path in configs]
        try:
            wait_ready(workers, settings.topics.predictions, settings.topics.partitions)
            return workers, attempt
        except RuntimeError as exc:
            for w in workers:
                w.stop()
            if attempt == retries:
                raise
            print(f"  a worker did not start ({str(exc).splitlines()[0]}); starting again",
                  flush=True)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- topics
def last_window_results(bootstrap: str, topic: str, last_ws: int,
                        timeout: float) -> tuple[float | None, int, int]:
    """(Kafka time of the last record of window ``last_ws``, records, distinct windows)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen_at: float | None = None
    records, windows = 0, set()
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(5_000, timeout=0.5)
            good = [m for m in batch if m.error() is None]
            if not good:
                if seen_at is not None and time.monotonic() - quiet_since > 3:
                    break
                continue
            quiet_since = time.monotonic()
            for msg in good:
                for doc in orjson.loads(msg.value() or b"[]"):  # one record per window
                    records += 1
                    ws = doc.get("window_start")
                    windows.add(ws)
                    if ws == last_ws:
                        at = msg.timestamp()[1] / 1000
                        seen_at = at if seen_at is None else max(seen_at, at)
    finally:
        consumer.close()
    return seen_at, records, len(windows)


def baseline(bootstrap: str, topics: list[str], parse: bool) -> tuple[float, int, int]:
    """Plain consumer reading ``topics`` to their end: (seconds reading, messages, events)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"base-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    ends: dict[tuple[str, int], int] = {}
    meta = consumer.list_topics(timeout=10)
    for topic in topics:
        for p in meta.topics[topic].partitions:
            ends[(topic, p)] = consumer.get_watermark_offsets(TopicPartition(topic, p))[1]
    consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
    remaining = {tp for tp, end in ends.items() if end > 0}
    messages = events = 0
    # From the consume call that brought the first messages to the one that completed the
    # last partition: the group's start-up is not throughput, and consume() waits out its
    # timeout when fewer than num_messages are there, so the timeout is short.
    t0: float | None = None
    t_end = 0.0
    while remaining:
        called = time.perf_counter()
        for msg in consumer.consume(1_000, timeout=0.05):
            if msg.error() is not None:
                continue
            if t0 is None:
                t0 = called
            messages += 1
            if parse:
                doc = orjson.loads(msg.value() or b"null")
                events += len(doc) if type(doc) is list else 1
            tp = (str(msg.topic()), int(msg.partition() or 0))
            if int(msg.offset() or 0) + 1 >= ends[tp]:
                remaining.discard(tp)
                t_end = time.perf_counter()
    seconds = t_end - (t0 or t_end)
    consumer.close()
    return seconds, messages, events


def bare_consumer(bootstrap: str, topics: list[str], events: int) -> dict[str, Any]:
    """The bare consumer's figures on ``topics`` holding ``events`` events, raw and with
    ``orjson.loads`` of every message: wall and CPU time (this process, all threads, so
    librdkafka's fetch threads count too), events/s and events per CPU-second."""
    out: dict[str, Any] = {}
    for parse in (False, True):
        cpu = time.process_time()
        seconds, messages, _ = baseline(bootstrap, topics, parse)
        cpu = time.process_time() - cpu
        out["orjson" if parse else "raw"] = {
            "messages": messages, "seconds": round(seconds, 3), "cpu_s": round(cpu, 3),
            "events_per_s": round(events / max(seconds, 1e-3)), "events_per_cpu_s": round(
                events / max(cpu, 1e-3))}
    return out
