"""An idle worker's CPU against the tick interval and the quiet progress interval
(docs/operations.md, "At rest").

Run under a broker::

    .venv/bin/python tools/kafka/local_kafka.py run -- \\
        .venv/bin/python load_tests/bench_idle.py [--ticks 1,2,5] [--quiet 0,5] \\
        [--seconds 20] [--rounds 2]

Per pair of ``windows.tick_interval_s`` and ``windows.quiet_progress_s`` asked (0: a
progress frame on every tick, as before that setting): one ``tidewatch worker`` on make
bench's config (4 partitions, no traffic), assigned and settled for 5 s, then its CPU (all
threads, from ``/proc``) over ``--seconds``, printed as a share of one core. Rounds
alternate the pairs, so that the machine's drift falls on each alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load_tests.benchkit import WINDOWS, ensure_bench_topics, new_tag, start_workers, write_config


def idle_share(bootstrap: str, root: Path, tick_s: float, quiet_s: float,
               seconds: float) -> float:
    """Share of one core the idle worker used over ``seconds``."""
    tag = new_tag()
    settings, path = write_config(bootstrap, root / tag, None, tag=tag, name="worker",
                                  windows={**WINDOWS, "tick_interval_s": tick_s,
                                           "quiet_progress_s": quiet_s})
    ensure_bench_topics(settings)
    procs, _ = start_workers([(settings, path)])
    worker = procs[0]
    try:
        time.sleep(5)  # past the start-up: recovery, the first ticks
        before = worker.cpu_s()
        time.sleep(seconds)
        return (worker.cpu_s() - before) / seconds
    finally:
        worker.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ticks", default="1,2,5", help="tick intervals (s), comma-separated")
    ap.add_argument("--quiet", default="5", help="quiet progress intervals (s), "
                    "comma-separated; 0: a frame on every tick")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    bootstrap = os.environ.get("TIDEWATCH_KAFKA__BOOTSTRAP")
    if not bootstrap:
        ap.error("TIDEWATCH_KAFKA__BOOTSTRAP is not set (run under local_kafka.py run)")
    root = Path(tempfile.mkdtemp(prefix="tw-idle-"))
    ticks = [float(t) for t in args.ticks.split(",")]
    quiets = [float(q) for q in args.quiet.split(",")]
    for _ in range(args.rounds):
        for tick_s in ticks:
            for quiet_s in quiets:
                share = idle_share(bootstrap, root, tick_s, quiet_s, args.seconds)
                print(f"tick_interval_s {tick_s:g}, quiet_progress_s {quiet_s:g}: idle "
                      f"worker {100 * share:.2f}% of a core", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
