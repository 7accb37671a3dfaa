"""The steady-rate scenario of ``make bench``: window-close latency.

Window-close latency is the time from the moment a model's watermark passed a window's end to
the moment that window's rows are all on the results topic (readable by anyone; the worker
runs with store ``none``, so the topic is where rows become queryable).

- *Watermark passed*: a model's watermark on a partition is its newest event time there
  minus the allowed lateness. So it passes a window's end ``E`` on partition ``p`` when the
  producer hands the SDK the model's first prediction for ``p`` with a timestamp
  ``>= E + lateness``; the driver records that wall time itself (it knows the partition: the
  SDK's murmur2). The window can close only when every partition has passed it, so the pass
  time is the latest of the partitions' (:func:`load_tests.bench_report.watermark_passes`).
  The SDK's linger (at most 200 ms) is inside the latency, as it is for a real service.
- *Rows on the topic*: a listener thread reads the results topic from before the first event
  and notes each record's arrival (wall time); the close rows of a window share one
  ``computed_at`` (later revisions have a later one), and the last of them to arrive is the
  close (:func:`load_tests.bench_report.close_times`).
- *Steady*: the percentiles leave out each model's first window, which was already open when
  its traffic began (a partial window, closed while the worker is still warming up); those
  are summarised apart (``first_window_latency_s``).

Event time is wall time, so a window closes about ``lateness`` after its end. Each of the
``MODELS`` models logs with its own delay (model k: event time = now - k x size/MODELS), so
their windows close at staggered moments instead of all at once on the minute: more, less
correlated samples from a couple of minutes of traffic.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer

from load_tests.bench_report import (
    PassTracker,
    close_latencies,
    close_times,
    latency_summary,
    watermark_passes,
)
from load_tests.benchkit import (
    consumed,
    ensure_bench_topics,
    new_tag,
    pace,
    prediction,
    start_workers,
    write_config,
)
from stream.sdk.client import MonitorClient
from stream.sdk.partitioning import partition_for
from stream.topics import internal_topics

MODELS = 6
LATENESS_S = 2
STEADY_WINDOWS = {"size_s": 60, "allowed_lateness_s": LATENESS_S, "label_horizon_s": 120,
                  "early_label_ttl_s": 60, "idle_partition_timeout_s": 5,
                  "revision_interval_s": 10, "tick_interval_s": 1}
LABEL_DELAY_S = 2.0  # every other prediction gets its label this much later


@dataclass
class SteadyProducer:
    """Sends predictions stamped "now" (minus the model's delay) at ``rate`` events/s, labels
    included, for ``seconds``; records when each model's watermark passed each window end."""

    settings: Any
    rate: float
    seconds: float
    batch_size: int = 100
    sent: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: BaseException | None = None
    #: when each model's watermark passed each window's end on each partition
    tracker: PassTracker = field(init=False)
    thread: threading.Thread = field(init=False)

    def start(self) -> None:
        windows = self.settings.windows
        self.tracker = PassTracker(windows.size_s * 1000, windows.allowed_lateness_s * 1000)
        self.thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)
        self.started = time.time()
        self.thread.start()

    def _run(self) -> None:
        size_ms = self.settings.windows.size_s * 1000
        parts = self.settings.topics.partitions
        delay_ms = [k * size_ms // MODELS for k in range(MODELS)]
        labels: deque[tuple[float, dict[str, Any]]] = deque()
        rng = random.Random(5)
        try:
            with MonitorClient.from_settings(self.settings, batch_size=self.batch_size,
                                             validate=False) as client:
                i = 0
                while True:
                    now = time.time()
                    if now - self.started >= self.seconds:
                        break
                    while labels and labels[0][0] <= now:
                        client.log_label(labels.popleft()[1])
                        self.sent += 1
                    k = i % MODELS
                    model = f"steady-{k}"
                    ts = int(now * 1000) - delay_ms[k]
                    event = prediction(i, ts, rng, model=model, prefix="s")
                    self.tracker.see(model, partition_for(event["request_id"], parts), ts, now)
                    client.log_prediction(event)
                    self.sent += 1
                    if i % 2 == 0:
                        labels.append((now + LABEL_DELAY_S, {
                            "request_id": event["request_id"], "model_id": model,
                            "timestamp": ts + int(LABEL_DELAY_S * 1000),
                            "label": int(rng.random() < 0.3)}))
                    i += 1
                    if i % 50 == 0:
                        pace(self.sent, self.rate, self.started)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        self.finished = time.time()

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


class ResultsListener:
    """Reads the results topic from a thread; keeps (model, window, computed_at, arrival)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.records: list[tuple[str, int, int, float]] = []
        self.assigned = threading.Event()
        self._stop = threading.Event()
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-close-{new_tag()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "fetch.wait.max.ms": 50})
        self._consumer.subscribe([topic], on_assign=lambda c, ps: self.assigned.set())
        self._thread = threading.Thread(target=self._run, name="results-listener",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(1_000, timeout=0.1):
                if msg.error() is not None:
                    continue
                at = time.time()
                for doc in orjson.loads(msg.value() or b"[]"):  # one record per window
                    self.records.append((doc["model_id"], int(doc["window_start"]),
                                         int(doc["computed_at"]), at))
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def run_steady(bootstrap: str, root: Path, *, rate: float, seconds: float,
               table_store: str | None, drain_s: float = 40) -> dict[str, Any]:
    """One worker under a steady ``rate`` for ``seconds``: close latencies and its costs."""
    tag = new_tag()
    settings, path = write_config(bootstrap, root / f"steady-{tag}", table_store, tag=tag,
                                  windows=STEADY_WINDOWS)
    ensure_bench_topics(settings)
    parts = settings.topics.partitions
    workers, restarts = start_workers([(settings, path)])
    worker = workers[0]
    listener: ResultsListener | None = None
    try:
        listener = ResultsListener(bootstrap, internal_topics(settings)["results"])
        if not listener.assigned.wait(60):
            raise RuntimeError("the results listener got no partitions")
        cpu0 = worker.cpu_s()
        producer = SteadyProducer(settings, rate, seconds)
        producer.start()
        behind = 0
        while not producer.done:
            time.sleep(1)
            worker.check()
        if producer.error is not None:
            raise RuntimeError(f"producer failed: {producer.error!r}")
        stats = worker.stats() or {}
        behind = producer.sent - consumed(stats)
        passes = watermark_passes(producer.tracker.passes, parts)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            if set(passes) <= set(close_times(list(listener.records))):
                break
            time.sleep(0.5)
            worker.check()
        cpu = worker.cpu_s() - cpu0
        stats = worker.stats() or stats
        peak = worker.peak_rss_mb()
    finally:
        worker.stop()
        if listener is not None:
            listener.stop()
    records = list(listener.records)
    closes = close_times(records)
    first_window = producer.tracker.first_window
    warm_up = {k: t for k, t in passes.items() if first_window.get(k[0]) == k[1]}
    steady = {k: t for k, t in passes.items() if k not in warm_up}
    latencies, missing = close_latencies(steady, closes)
    first, missing_first = close_latencies(warm_up, closes)
    # the close by the worker's own clock (computed_at), for comparison
    evaluated: dict[tuple[str, int], int] = {}
    for model, ws, computed, _at in records:
        evaluated[(model, ws)] = min(evaluated.get((model, ws), computed), computed)
    eval_lat = [evaluated[k] / 1000 - t for k, t in steady.items() if k in evaluated]
    produced_s = producer.finished - producer.started
    return {
        "rate_asked": rate, "rate": round(producer.sent / produced_s),
        "seconds": round(produced_s, 1), "events": producer.sent,
        "consumed": consumed(stats), "behind_at_end": behind, "models": MODELS,
        "window_s": settings.windows.size_s, "lateness_s": settings.windows.allowed_lateness_s,
        "batch_size": producer.batch_size, "partitions": parts,
        "latency_s": latency_summary(latencies), "missing": len(missing),
        "first_window_latency_s": latency_summary(first), "first_missing": len(missing_first),
        "evaluated_latency_s": latency_summary(eval_lat),
        "worker_cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(consumed(stats) / cpu) if cpu else None,
        "peak_rss_mb": round(peak), "restarts": restarts,
        "latencies": [round(x, 3) for x in latencies],
    }
