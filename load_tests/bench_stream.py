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
with; pick R below the worker's capacity, which `make bench` measures).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load_tests.benchkit import (
    EARLY_SHARE,
    LABEL_SHARE,
    T0,
    Producer,
    Worker,
    baseline,
    last_window_results,
    write_config,
)
from stream.topics import ensure_topics, internal_topics
from stream.windows.frames import window_start


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
    max_ts = min((m["max_event_time"] for p in parts for m in p.get("models", {}).values()),
                 default=0)
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
          f"worker log {config.with_suffix('.log')}\n")

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
                    "closed_through", "max_event_time", "early_labels_waiting")}
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
