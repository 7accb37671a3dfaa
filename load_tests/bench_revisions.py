"""Late labels over many windows: what revisions cost per revision interval (in-process).

Run: ``.venv/bin/python load_tests/bench_revisions.py [--hours 168] [--rate 1]
[--labels 100,1000,5000,20000] [--partitions 4] [--slow-after 604800]`` (about 5 minutes
with the defaults, which are docs/benchmarks.md's table; ``--slow-after 604800`` its
"before" columns)

Labels come minutes to days after their prediction. With the default windows (300 s) and
label horizon (7 days) thousands of a model's finalised windows may each get a label within
one ``windows.revision_interval_s`` (10 s), and every such window is revised: each stage 1
partition that joined a label sends the window's labelled side (a ``perf`` frame), and stage
2 merges the partitions' sides and evaluates the performance rows again. ``make bench``
never shows this (its labels come at most 120 s late); this does.

Set-up, not measured: ``--hours`` of predictions at ``--rate`` per second (event time = the
simulated wall clock, as live), read by stage 1 (``--partitions`` stages, the SDK's 100-event
messages), windows closed and finalised by stage 2, no labels. Then, for each count in
``--labels``, rounds of: that many labels for random unlabelled predictions of the
whole span (100-event messages per partition), then 10 s later the revision tick of every
partition, whose perf frames stage 2 reads and revises (once per window,
``MergeStage.revise_pending``). Per count it prints, as the mean of 12 rounds after 6
unmeasured ones, the windows revised per round and the CPU of joining the labels, of stage
1's tick (the perf frames) and of stage 2, the last two also as a share of one core over
the 10 s interval, and the costliest round's revisions (stage 1 tick + stage 2): a burst
stalls the worker's event loop that long. ``--slow-after`` sets
``windows.revision_slow_after_s`` (default: the setting's; a week turns it off).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_stage import Stage2
from benchkit import T0, prediction

from stream.config import Settings
from stream.join.index import join_index
from stream.sdk.partitioning import partition_for
from stream.windows.partition import PartitionStage
from stream.windows.plan import Plan

INTERVAL_S = 10
#: Rounds per label count: a slow window (``windows.revision_slow_interval_s``, 60 s) is
#: revised once per six, so the mean over 12 rounds after 6 unmeasured ones is the steady
#: cost per interval.
WARM_UP, ROUNDS = 6, 12
WINDOWS = {"size_s": 300, "allowed_lateness_s": 60, "label_horizon_s": 7 * 86_400,
           "early_label_ttl_s": 3600, "idle_partition_timeout_s": 30,
           "revision_interval_s": INTERVAL_S, "tick_interval_s": 1}


class Pipeline:
    """Stage 1 per partition and stage 2 in one process, on a simulated wall clock."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.clock = [T0 / 1000]
        self.stages = [PartitionStage(p, settings, {}, join_index(settings, p),
                                      clock=lambda: self.clock[0])
                       for p in range(partitions)]
        self.merge = Stage2(settings, partitions, self.clock)
        self.offsets = [0] * partitions

    def read(self, kind: str, events: list[dict[str, Any]]) -> None:
        """``events`` as the SDK sends them: 100 per message and partition."""
        by_part: dict[int, list[dict[str, Any]]] = {}
        for event in events:
            by_part.setdefault(partition_for(event["request_id"], len(self.stages)),
                               []).append(event)
        for p, evs in by_part.items():
            stage = self.stages[p]
            for i in range(0, len(evs), 100):
                offset = self.offsets[p]
                self.offsets[p] += 1
                batch = evs[i:i + 100]
                if kind == "prediction":
                    self.run(stage, stage.on_predictions(batch, offset, offset))
                else:
                    self.run(stage, stage.on_labels(batch, offset, offset))

    def run(self, stage: PartitionStage, plan: Plan) -> None:
        self.merge.send(plan)
        stage.commit(plan)

    def tick(self) -> None:
        for stage in self.stages:
            self.run(stage, stage.tick(caught_up=self.clock[0]))
        self.merge.revise()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=168.0, help="span of predictions")
    parser.add_argument("--rate", type=float, default=1.0, help="predictions per second")
    parser.add_argument("--labels", default="100,1000,5000,20000",
                        help="labels per revision interval, comma-separated")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--slow-after", type=int, default=None,
                        help="windows.revision_slow_after_s (default: the setting's)")
    args = parser.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        slow = {} if args.slow_after is None else {"revision_slow_after_s": args.slow_after}
        settings = Settings.model_validate({
            "windows": {**WINDOWS, **slow}, "metrics": {"segments": ["country"]},
            "worker": {"table_store": "rocksdb://", "data_dir": tmp}})
        pipe = Pipeline(settings, args.partitions)
        n = int(args.hours * 3600 * args.rate)
        step_ms = 1000 / args.rate
        per_minute = max(1, int(60 * args.rate))
        started = time.process_time()
        for first in range(0, n, per_minute):  # a minute of traffic, then a tick
            batch = [prediction(i, T0 + int(i * step_ms), rng)
                     for i in range(first, min(n, first + per_minute))]
            pipe.clock[0] = batch[-1]["timestamp"] / 1000
            pipe.read("prediction", batch)
            pipe.tick()
        pipe.clock[0] += 3600  # idle: every window closes and is finalised
        pipe.tick()
        pipe.tick()
        finalised = sum(m.finalised for m in pipe.merge.merges)
        print(f"set-up: {n:,} predictions over {args.hours:g} h, {args.partitions} "
              f"partitions, {finalised:,} windows finalised; slow revisions after "
              f"{settings.windows.revision_slow_after_s:,} s, every "
              f"{settings.windows.revision_slow_interval_s:g} s "
              f"({time.process_time() - started:.1f} CPU-s)")
        unlabelled = list(range(n))
        rng.shuffle(unlabelled)
        print(f"{'labels/10 s':>12} {'windows revised':>16} {'join ms':>9} "
              f"{'stage 1 tick ms':>16} {'stage 2 ms':>11} {'share of a core':>16} "
              f"{'worst round ms':>14}")
        for count in (int(c) for c in args.labels.split(",")):
            rounds = []
            for r in range(WARM_UP + ROUNDS):
                picked, unlabelled = unlabelled[:count], unlabelled[count:]
                now_ms = int(pipe.clock[0] * 1000)
                labels = [{"request_id": f"b-{i}", "model_id": "bench", "timestamp": now_ms,
                           "label": int(rng.random() < 0.3)} for i in picked]
                revisions = sum(m.revisions for m in pipe.merge.merges)
                c0, t0 = pipe.merge.cpu, time.process_time()
                pipe.read("label", labels)
                c1, t1 = pipe.merge.cpu, time.process_time()
                pipe.clock[0] += INTERVAL_S
                pipe.tick()
                c2, t2 = pipe.merge.cpu, time.process_time()
                if r >= WARM_UP:
                    rounds.append((sum(m.revisions for m in pipe.merge.merges) - revisions,
                                   (t1 - t0) - (c1 - c0), (t2 - t1) - (c2 - c1), c2 - c0))
            windows, join, tick, stage2 = (sum(x) / ROUNDS for x in zip(*rounds, strict=True))
            worst = max(r[2] + r[3] for r in rounds)
            print(f"{count:>12,} {windows:>16,.0f} {join * 1000:>9.0f} {tick * 1000:>16.0f} "
                  f"{stage2 * 1000:>11.0f} {(tick + stage2) / INTERVAL_S:>16.1%} "
                  f"{worst * 1000:>14.0f}")
        for stage in pipe.stages:
            stage.joins.close()


if __name__ == "__main__":
    main()
