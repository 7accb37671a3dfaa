"""One real worker under a long stream: throughput, and memory bounded by configuration.

Run (needs a broker; ``local_kafka.py run`` starts one and exports its address)::

    .venv/bin/python tools/kafka/local_kafka.py run --state .run/k-bench.json -- \\
        .venv/bin/python load_tests/bench_stream.py [--quick | --events N]

Issue 4's acceptance: "Memory of the join state and of open windows stays bounded by
configuration, measured with a stream of at least a million events". A ``tidewatch worker``
process (store ``none``, tables ``memory://`` unless ``--table-store``, 4 partitions, 60 s
windows, label horizon 600 s, early-label TTL 300 s, idle timeout 5 s) consumes ``--events``
predictions plus labels for half of them (a tenth of those sent well before their prediction,
the rest 1-120 s of event time after), produced with the SDK (``MonitorClient``, 500 events per
message). Event time advances at a fixed ``--event-rate`` predictions per second (default 25: a
million events span 11 hours), so windows close and join entries expire continuously, and the
bound on the join state, ``event-rate x (horizon + window)`` entries, is the same whatever the
event count.

Every ``--every`` seconds it samples the worker's RSS (``/proc/<pid>/status``) and ``/stats``
(join entries, open windows and events, perf windows, stage-2 pending windows, consumed
events), and prints a row. The summary gives events/s end to end (producer start to the last
window's results on the results topic, and to the worker having consumed everything), peak and
final RSS, the maxima of the state next to their configured bounds, and first-half versus
second-half maxima: a plateau, not growth with the event count. The baseline, measured in the
same run after the worker stopped (the machine is shared and noisy), is a plain confluent-kafka
consumer reading the same two topics (raw, then with ``orjson.loads`` of every message), and
the worker's events per CPU-second, which noise and throttling affect least.

Two regimes: by default the producer sends as fast as it can (the worker catches up on a
backlog); ``--produce-rate R`` throttles it to R events/s (a live system the worker keeps up
with; pick R below the worker's capacity, ~1,200 ev/s on a 2-core machine).
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.client import MonitorClient
from stream.config import Settings, load_settings
from stream.topics import ensure_topics, internal_topics
from stream.windows import window_start

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
WINDOWS = {"size_s": 60, "allowed_lateness_s": 60, "label_horizon_s": 600,
           "early_label_ttl_s": 300, "idle_partition_timeout_s": 5, "revision_interval_s": 10,
           "tick_interval_s": 1}
LABEL_SHARE, EARLY_SHARE = 0.5, 0.1  # labelled predictions; of those, labels sent early
EARLY_LEAD_S = 120  # an early label is sent this much event time before its prediction
MAX_DELAY_S = 120  # a late label comes 1..MAX_DELAY_S seconds of event time after


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(bootstrap: str, folder: Path,
                 table_store: str = "memory://") -> tuple[Settings, Path]:
    tag = uuid.uuid4().hex[:8]
    doc = {
        "kafka": {"bootstrap": bootstrap},
        "topics": {"predictions": f"bpred-{tag}", "labels": f"blabels-{tag}",
                   "dead_letter": f"bdlq-{tag}", "alerts": f"balerts-{tag}", "partitions": 4},
        "worker": {"app_id": f"bench-{tag}", "data_dir": str(folder / "worker"),
                   "web_port": free_port(), "table_store": table_store},
        "windows": WINDOWS,
        "store": {"kind": "none"},
        "metrics": {"segments": ["country"]},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_settings(path), path


# ---------------------------------------------------------------------------- the stream
def stream_events(n: int, event_rate: float, seed: int = 11) -> Any:
    """Yield ("prediction" | "label", event) in the order a live system would send them."""
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
        p = rng.random()
        device = ("ios", "android", "web")[i % 3]
        yield "prediction", {
            "request_id": f"b-{i}", "model_id": "bench", "model_version": "v1", "timestamp": ts,
            "features": {"amount": round(rng.lognormvariate(3.0, 1.0), 2),
                         "age": float(18 + i % 60), "device": device,
                         "is_new_user": p < 0.2, "coupon": None if p < 0.7 else "SPRING"},
            "prediction": int(p >= 0.5), "probability": round(p, 6),
            "segments": {"country": ("DE", "FR", "US", "BR")[i % 4], "device": device},
            "latency_ms": round(rng.random() * 30, 2),
        }
        if i not in early and rng.random() < LABEL_SHARE * (1 - EARLY_SHARE) / (
                1 - LABEL_SHARE * EARLY_SHARE):
            due = ts + rng.randint(1_000, MAX_DELAY_S * 1000)
            heapq.heappush(pending, (due, i, label_of(i, due)))
        early.pop(i, None)
    while pending:
        yield "label", heapq.heappop(pending)[2]


@dataclass
class Producer:
    """Sends the stream from a thread; counts what it sent."""

    settings: Settings
    events: int
    event_rate: float
    wall_rate: float  # events/s to throttle to; 0: as fast as possible
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
            with MonitorClient.from_settings(self.settings, batch_size=500,
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
                    if self.wall_rate and sent % 1000 == 0:
                        ahead = sent / self.wall_rate - (time.time() - self.started)
                        if ahead > 0:
                            time.sleep(ahead)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        self.finished = time.time()

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


# ---------------------------------------------------------------------------- the worker
class Worker:
    def __init__(self, config: Path, settings: Settings) -> None:
        self.port = settings.worker.web_port
        self.log_path = config.parent / "worker.log"
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

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self) -> float:
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


@dataclass
class Sample:
    t: float
    produced: int
    consumed: int
    rss_mb: float
    cpu_s: float
    entries: int
    entries_max_part: int
    open_windows: int
    open_events: int
    perf_windows: int
    pending: int
    event_time_h: float


def take_sample(t0: float, worker: Worker, producer: Producer) -> Sample | None:
    stats = worker.stats()
    if stats is None:
        return None
    parts = stats.get("partitions", {}).values()
    merge = stats.get("merge", {}).values()
    # Event time is per model (one model here): the slowest partition's newest event.
    max_ts = min((max((m["max_event_time"] for m in p.get("models", {}).values()), default=0)
                  for p in parts), default=0)
    return Sample(
        t=time.time() - t0, produced=producer.predictions + producer.labels,
        consumed=sum(stats.get("valid", {}).values()), rss_mb=worker.rss_mb(),
        cpu_s=worker.cpu_s(),
        entries=sum(p["join_entries_tracked"] for p in parts),
        entries_max_part=max((p["join_entries_tracked"] for p in parts), default=0),
        open_windows=sum(p["open_windows"] for p in parts),
        open_events=sum(p["open_events"] for p in parts),
        perf_windows=sum(p["perf_windows"] for p in parts),
        pending=sum(m["pending_windows"] for m in merge),
        event_time_h=max(max_ts - T0, 0) / 3_600_000,
    )


HEADER = (f"{'t s':>6} {'produced':>10} {'consumed':>10} {'ev/s':>7} {'RSS MB':>7} "
          f"{'cpu%':>5} {'join ent':>9} {'max/part':>8} {'open win':>8} {'open ev':>8} "
          f"{'perf win':>8} {'pending':>7} {'evt h':>6}")


def row(s: Sample, prev: Sample | None) -> str:
    dt = s.t - prev.t if prev else s.t
    rate = (s.consumed - (prev.consumed if prev else 0)) / dt if dt > 0 else 0.0
    cpu = 100 * (s.cpu_s - (prev.cpu_s if prev else 0)) / dt if dt > 0 else 0.0
    return (f"{s.t:>6.0f} {s.produced:>10,} {s.consumed:>10,} {rate:>7,.0f} {s.rss_mb:>7.0f} "
            f"{cpu:>5.0f} {s.entries:>9,} {s.entries_max_part:>8,} {s.open_windows:>8} "
            f"{s.open_events:>8,} {s.perf_windows:>8} {s.pending:>7} {s.event_time_h:>6.2f}")


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
                records += 1
                ws = orjson.loads(msg.value() or b"{}").get("window_start")
                windows.add(ws)
                if ws == last_ws:
                    at = msg.timestamp()[1] / 1000
                    seen_at = at if seen_at is None else max(seen_at, at)
    finally:
        consumer.close()
    return seen_at, records, len(windows)


def baseline(bootstrap: str, topics: list[str], parse: bool) -> tuple[float, int, int]:
    """Plain consumer reading ``topics`` to their end: (seconds, messages, events)."""
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
    t0 = time.perf_counter()
    while remaining:
        for msg in consumer.consume(1_000, timeout=1):
            if msg.error() is not None:
                continue
            messages += 1
            if parse:
                doc = orjson.loads(msg.value() or b"null")
                events += len(doc) if type(doc) is list else 1
            tp = (str(msg.topic()), int(msg.partition() or 0))
            if int(msg.offset() or 0) + 1 >= ends[tp]:
                remaining.discard(tp)
    seconds = time.perf_counter() - t0
    consumer.close()
    return seconds, messages, events


# ---------------------------------------------------------------------------- summary
def halves(samples: list[Sample], total: int, key: str) -> tuple[float, float]:
    """Max of ``key`` over samples in the first and in the second half of consumption."""
    first = [getattr(s, key) for s in samples if 0 < s.consumed <= total / 2]
    second = [getattr(s, key) for s in samples if s.consumed > total / 2]
    return max(first, default=0), max(second, default=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="predictions to send")
    ap.add_argument("--quick", action="store_true", help="100k predictions")
    ap.add_argument("--event-rate", type=float, default=25.0,
                    help="predictions per second of event time")
    ap.add_argument("--produce-rate", type=float, default=0.0,
                    help="throttle the producer to this many events/s (0: no throttle)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--timeout", type=float, default=330.0,
                    help="give up waiting for the worker after this many seconds")
    ap.add_argument("--table-store", default="memory://",
                    help="the worker's Faust table store: memory:// or rocksdb://")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.events
    bootstrap = os.environ.get("TIDEWATCH_KAFKA__BOOTSTRAP")
    if not bootstrap:
        ap.error("TIDEWATCH_KAFKA__BOOTSTRAP is not set (run under local_kafka.py run)")
    folder = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    settings, config = write_config(bootstrap, folder, args.table_store)
    ensure_topics(settings)
    win = settings.windows
    print(f"{n:,} predictions at {args.event_rate:g}/s of event time "
          f"({n / args.event_rate / 3600:.1f} h), ~{LABEL_SHARE:.0%} labelled; windows "
          f"{win.size_s} s, lateness {win.allowed_lateness_s} s, horizon "
          f"{win.label_horizon_s} s, early TTL {win.early_label_ttl_s} s, idle "
          f"{win.idle_partition_timeout_s:g} s; tables {args.table_store}; "
          f"worker log {folder / 'worker.log'}\n")

    worker = Worker(config, settings)
    samples: list[Sample] = []
    try:
        deadline = time.monotonic() + 60
        while worker.stats() is None:
            worker.check()
            if time.monotonic() > deadline:
                raise RuntimeError("the worker's web server did not come up")
            time.sleep(0.5)
        producer = Producer(settings, n, args.event_rate, args.produce_rate)
        cpu0 = worker.cpu_s()
        t0 = time.time()
        producer.start()
        print(HEADER)
        consumed_at: float | None = None
        give_up = time.monotonic() + args.timeout
        while time.monotonic() < give_up:
            time.sleep(args.every)
            worker.check()
            sample = take_sample(t0, worker, producer)
            if sample is None:
                continue
            print(row(sample, samples[-1] if samples else None), flush=True)
            samples.append(sample)
            if producer.error is not None:
                raise RuntimeError(f"producer failed: {producer.error!r}")
            if producer.done and sample.consumed >= producer.predictions + producer.labels:
                consumed_at = sample.t
                break
        total = producer.predictions + producer.labels
        last_ws = window_start(producer.last_ts, win.size_s * 1000)
        results_topic = internal_topics(settings)["results"]
        results_at, records, windows = last_window_results(bootstrap, results_topic, last_ws,
                                                           timeout=150 if consumed_at else 5)
        final = take_sample(t0, worker, producer)
        stats = worker.stats() or {}
    finally:
        worker.stop()
    if final is not None:
        samples.append(final)

    produced_s = producer.finished - producer.started
    print(f"\nproduced {producer.predictions:,} predictions + {producer.labels:,} labels = "
          f"{total:,} events in {produced_s:.1f} s ({total / produced_s:,.0f} ev/s)")
    if consumed_at is None:
        done = samples[-1].consumed if samples else 0
        print(f"NOT all consumed within {args.timeout:.0f} s: {done:,} of {total:,} "
              f"({done / samples[-1].t:,.0f} ev/s)")
        rate = done / samples[-1].t if samples else 0.0
    else:
        rate = total / consumed_at
        print(f"worker consumed everything {consumed_at:.1f} s after producer start "
              f"(sampled every {args.every:g} s): {rate:,.0f} ev/s")
    if results_at is not None:
        e2e = results_at - t0
        print(f"last window's results on the results topic {e2e:.1f} s after producer start "
              f"(idle close {win.idle_partition_timeout_s:g} s included): "
              f"{total / e2e:,.0f} ev/s end to end")
    else:
        print("last window's results NOT seen on the results topic")
    expected_windows = (window_start(producer.last_ts, win.size_s * 1000) - T0) // (
        win.size_s * 1000) + 1
    print(f"results topic: {records:,} records for {windows} windows "
          f"(expected {expected_windows})")
    counters = {k: v for p in stats.get("partitions", {}).values() for k, v in p.items()
                if isinstance(v, int) and not isinstance(v, bool) and k not in (
                    "open_windows", "open_events", "perf_windows", "join_entries_tracked",
                    "caught_up")}
    sums: dict[str, int] = {}
    for part in stats.get("partitions", {}).values():
        for key in counters:
            sums[key] = sums.get(key, 0) + int(part.get(key, 0))
    print(f"join counters (all partitions): {sums}")
    joined = sums.get("joined_labels", 0) + sums.get("joined_early_labels", 0)
    print(f"labels joined to their prediction: {joined:,} of {producer.labels:,} "
          f"({joined / max(producer.labels, 1):.1%}); early-label entries that expired "
          f"unjoined: {sums.get('expired_early_labels', 0):,}")
    print(f"ingest: valid {stats.get('valid')}, rejected {stats.get('rejected')}")

    rss = [s.rss_mb for s in samples]
    bound_entries = args.event_rate * (win.label_horizon_s + win.size_s)
    bound_early = args.event_rate * LABEL_SHARE * EARLY_SHARE * win.early_label_ttl_s
    per_part_windows = -(-(win.size_s + win.allowed_lateness_s) // win.size_s) + 1
    print(f"\nRSS: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, final {rss[-1]:.0f} MB")
    print(f"join entries: max {max(s.entries for s in samples):,} (all partitions); bound "
          f"event-rate x (horizon + window) = {args.event_rate:g} x "
          f"{win.label_horizon_s + win.size_s} = {bound_entries:,.0f}, + early labels "
          f"<= {bound_early:,.0f}; vs {total:,} events")
    print(f"open windows: max {max(s.open_windows for s in samples)} (bound "
          f"{per_part_windows} per partition x 4 = {4 * per_part_windows}); open events max "
          f"{max(s.open_events for s in samples):,} (bound ~ event-rate x (window + lateness) "
          f"= {args.event_rate * (win.size_s + win.allowed_lateness_s):,.0f}); perf windows "
          f"max {max(s.perf_windows for s in samples)}; stage-2 pending max "
          f"{max(s.pending for s in samples)}")
    print("\nplateau check (max over samples while the first / second half of the events "
          "was consumed):")
    for key in ("rss_mb", "entries", "open_windows", "open_events", "perf_windows"):
        a, b = halves(samples, total, key)
        verdict = "flat" if b <= a * 1.15 + 1 else "GROWS"
        print(f"  {key:<13} first half {a:>10,.0f}   second half {b:>10,.0f}   {verdict}")

    worker_cpu = samples[-1].cpu_s - cpu0
    per_cpu = samples[-1].consumed / worker_cpu
    print(f"\nworker CPU {worker_cpu:.0f} s for {samples[-1].consumed:,} events: "
          f"{per_cpu:,.0f} events per CPU-second (its capacity on one core)")
    inputs = [settings.topics.predictions, settings.topics.labels]
    print("baseline, plain confluent-kafka consumer on the same topics, after the worker "
          "stopped:")
    for parse in (False, True):
        cpu = time.process_time()
        seconds, messages, _ = baseline(bootstrap, inputs, parse)
        cpu = time.process_time() - cpu
        print(f"  {'+ orjson.loads' if parse else 'raw':<14} {messages:,} messages in "
              f"{seconds:4.1f} s: {total / seconds:>9,.0f} ev/s (worker {rate:,.0f}: "
              f"{total / seconds / rate:,.0f}x slower); {total / cpu:>9,.0f} ev per CPU-s "
              f"(worker {total / cpu / per_cpu:,.0f}x more CPU per event)")
    if args.produce_rate:
        print(f"  (producer throttled to {args.produce_rate:,.0f} ev/s: the worker's ev/s is "
              "the offered rate; compare per CPU-second)")
    return 0 if consumed_at is not None and results_at is not None else 1


if __name__ == "__main__":
    sys.exit(main())
