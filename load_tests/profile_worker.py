"""Where a worker's CPU goes: py-spy on a ``tidewatch worker`` through one make-bench backlog.

Run under a broker: ``.venv/bin/python tools/kafka/local_kafka.py run -- .venv/bin/python
load_tests/profile_worker.py [--events 150000] [--batch 100] [--raw FILE]``

The backlog is :func:`load_tests.bench_worker.run_backlog`'s (same stream, same worker
settings); py-spy samples the worker process at ``--rate`` Hz, every thread. Samples whose
innermost frame waits (the event loop's ``select``, a thread blocked in a queue or in
librdkafka's poll) and the start-up imports are dropped: the shares are of the samples where
the worker computes. Printed: events per CPU-second under the profiler (py-spy costs a
little), each part's inclusive share (they overlap: stage 1 sends through aiokafka's
producer), and the functions with the most samples of their own. The figures that
docs/benchmarks.md and the README cite from a profile come from this script.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Innermost frames that wait rather than compute.
IDLE: Final = ("EpollSelector.select", "TopicReferences._follow", "Condition.wait",
               "Event.wait", "thread.py:81", "_bootstrap_inner")
#: Parts of the worker: a sample counts for a part if any of its frames matches.
PARTS: Final = {
    "stage 1 (ingest, join, windows, plans, acks)": "create_app.<locals>.stage1_agent ",
    "stage 2 (merge, evaluate, revise)": "create_app.<locals>.stage2_agent ",
    "aiokafka producer (all the worker sends)": "(aiokafka/producer/",
    "aiokafka consumer (fetching)": "(aiokafka/consumer/",
    "Faust's fetch loop (Consumer._drain_messages)": "Consumer._drain_messages ",
}


def samples(raw: Path) -> Iterator[tuple[list[str], int]]:
    """py-spy's raw (collapsed) stacks, outermost frame first, without idle or import ones."""
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(mark in frames[-1] for mark in IDLE) or "_find_and_load" in stack:
            continue
        yield frames, int(count)


def shares(raw: Path, top: int) -> tuple[int, dict[str, float], list[tuple[str, float]]]:
    """Computing samples; each part's inclusive share; the ``top`` functions by own samples."""
    total = 0
    parts: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in samples(raw):
        total += n
        for part, mark in PARTS.items():
            if any(mark in f for f in frames):
                parts[part] += n
        leaf = frames[-1]
        own[leaf.split(" (")[0] + " (" + leaf.rsplit("/", 1)[-1].split(":")[0]] += n
    if not total:
        raise SystemExit("no computing samples: was py-spy allowed to attach?")
    return (total, {p: parts[p] / total for p in PARTS},
            [(f, n / total) for f, n in own.most_common(top)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--batch", type=int, default=100, help="events per message")
    ap.add_argument("--rate", type=int, default=200, help="samples per second")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--raw", type=Path, help="keep py-spy's raw stacks here")
    args = ap.parse_args()

    from load_tests import bench_worker, benchkit

    raw = args.raw or Path(tempfile.mkdtemp(prefix="tw-profile-")) / "worker.raw"
    spy = Path(sys.executable).with_name("py-spy")
    spies: list[subprocess.Popen[bytes]] = []
    start = benchkit.Worker.__init__

    def attach(self: benchkit.Worker, *a: object, **kw: object) -> None:
        start(self, *a, **kw)  # type: ignore[arg-type]
        spies.append(subprocess.Popen(
            [str(spy), "record", "--pid", str(self.proc.pid), "--rate", str(args.rate),
             "--format", "raw", "--threads", "--nonblocking", "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    benchkit.Worker.__init__ = attach  # type: ignore[method-assign]
    run = bench_worker.run_backlog(
        os.environ["TIDEWATCH_KAFKA__BOOTSTRAP"], Path(tempfile.mkdtemp(prefix="tw-profile-")),
        events=args.events, batch_size=args.batch, workers=1, table_store=None, bare=False)
    for p in spies:
        p.wait(60)  # py-spy writes its file when the worker exits
    total, parts, top = shares(raw, args.top)
    print(f"{run['events']:,} events in {args.batch}-event messages: "
          f"{run['events_per_cpu_s']:,} events per CPU-second under the profiler; "
          f"{total:,} computing samples at {args.rate} Hz (raw stacks: {raw})")
    print("part of the worker (inclusive; parts overlap)      share")
    for part, share in parts.items():
        print(f"  {part:<48} {share:6.1%}")
    print("functions with the most samples of their own")
    for name, share in top:
        print(f"  {name:<60} {share:6.1%}")


if __name__ == "__main__":
    main()
