"""Stage 1 alone, in-process (no Kafka): decode, join, windows, checkpoints, per partition.

Run: ``.venv/bin/python load_tests/bench_stage.py [--events N] [--batch 100] [--rate 25]
[--stage2]``

The worker's figure (``make bench``) mixes our code with Faust, aiokafka and the broker; this
one isolates what stage 1 costs per event, so that a change to the hot path can be measured
in seconds and profiled (``py-spy record -- python load_tests/bench_stage.py``). The stream
is ``make bench``'s (:func:`benchkit.stream_events`: half the predictions labelled, a tenth
of those labels sent early; ``--rate`` predictions per second of event time, 25 as there),
in messages of ``--batch`` events per partition, read in the order they were sent, each
partition's by its own stage; a tick every 20 messages. It prints events per CPU-second,
beside ``orjson.loads`` of the same messages (the floor) in the same run. The event-time
density matters: at 25 predictions/s a partition's window holds ~375 of them, and the
per-window costs (folds, frames) weigh on every event; at 2,500/s they fade.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit import WINDOWS, stream_events

from stream.config import Settings
from stream.events import decode_message
from stream.join.index import join_index
from stream.merge.sink import encode_results
from stream.merge.stage import MergePlan, MergeStage
from stream.sdk.partitioning import partition_for
from stream.windows.partition import PartitionStage
from stream.windows.plan import Plan

Message = tuple[str, int, bytes]  # kind, partition, JSON


def messages(n: int, batch: int, partitions: int, rate: float = 25.0) -> list[Message]:
    """The stream as messages of ``batch`` events per side and partition (the SDK's
    batching, keyed by request id)."""
    out: list[Message] = []
    pending: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for kind, event in stream_events(n, event_rate=rate):
        key = (kind, partition_for(event["request_id"], partitions))
        batch_ = pending.setdefault(key, [])
        batch_.append(event)
        if len(batch_) == batch:
            out.append((*key, orjson.dumps(batch_ if batch > 1 else event)))
            pending[key] = []
    out.extend((*k, orjson.dumps(v)) for k, v in pending.items() if v)
    return out


class NoReferences:
    """make bench's models have no reference (no drift rows)."""

    def get(self, model_id: str, model_version: str) -> None:
        return None


class Stage2:
    """Stage 2 fed the frames stage 1 planned (``--stage2``), its CPU counted apart: one
    merge stage per partials partition, keyed as the worker keys them."""

    def __init__(self, settings: Settings, partitions: int, clock: list[float]) -> None:
        self.merges = [MergeStage(p, settings, partitions, {}, {}, NoReferences(),
                                  clock_ms=lambda: int(clock[0] * 1000),
                                  clock=lambda: clock[0]) for p in range(partitions)]
        self.cpu = 0.0
        self.windows = 0

    def send(self, plan: Plan) -> None:
        started = time.process_time()
        for key, value in plan.frames:
            self._on(self.merges[partition_for(key, len(self.merges))], value)
        for value in plan.broadcast:
            for merge in self.merges:
                self._on(merge, value)
        self.cpu += time.process_time() - started

    def revise(self) -> None:
        """What the agent does when its stream has nothing more: revise each window that
        perf frames changed, once (``MergeStage.revise_pending``). Called after each round
        of ticks, whose perf frames a busy stage 2 would find waiting together."""
        started = time.process_time()
        for merge in self.merges:
            self._run(merge, merge.revise_pending())
        self.cpu += time.process_time() - started

    def _on(self, merge: MergeStage, value: bytes) -> None:
        self._run(merge, merge.on_frame(value, None))

    def _run(self, merge: MergeStage, plan: MergePlan) -> None:
        for result in plan.results:
            list(encode_results(result))
        self.windows += len(plan.results)
        merge.commit(plan)


def run(settings: Settings, msgs: list[Message], partitions: int,
        stage2: bool = False) -> tuple[float, list[PartitionStage], Stage2 | None]:
    clock = [1e9]
    stages = [PartitionStage(p, settings, {}, join_index(settings, p), clock=lambda: clock[0])
              for p in range(partitions)]
    merge = Stage2(settings, partitions, clock) if stage2 else None
    offsets: dict[tuple[str, int], int] = {}

    def commit(stage: PartitionStage, plan: Plan) -> None:
        if merge is not None:
            merge.send(plan)
        stage.commit(plan)

    started = time.process_time()
    for i, (kind, partition, raw) in enumerate(msgs):
        stage = stages[partition]
        decoded = decode_message(raw, kind, 4 << 20)  # type: ignore[arg-type]
        offset = offsets.get((kind, partition), 0)
        offsets[(kind, partition)] = offset + 1
        if kind == "prediction":
            commit(stage, stage.on_predictions(decoded.valid, offset, offset))
        else:
            commit(stage, stage.on_labels(decoded.valid, offset, offset))
        if i % 20 == 19:
            clock[0] += 1
            for stage in stages:
                commit(stage, stage.tick())
            if merge is not None:
                merge.revise()
    clock[0] += 3600
    for stage in stages:
        commit(stage, stage.tick(caught_up=clock[0]))
    if merge is not None:
        merge.revise()
    cpu = time.process_time() - started
    return cpu - (merge.cpu if merge else 0.0), stages, merge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="predictions")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=25.0,
                        help="predictions per second of event time (make bench: 25)")
    parser.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    parser.add_argument("--stage2", action="store_true",
                        help="also merge and evaluate the frames (stage 2), timed apart")
    args = parser.parse_args()
    msgs = messages(args.events, args.batch, args.partitions, args.rate)
    events = sum(len(orjson.loads(raw)) if args.batch > 1 else 1 for _, _, raw in msgs)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({
            "windows": WINDOWS, "metrics": {"segments": ["country"]},
            "worker": {"table_store": f"{args.store}://", "data_dir": tmp}})
        started = time.process_time()
        for _, _, raw in msgs:
            orjson.loads(raw)
        floor = time.process_time() - started
        cpu, stages, merge = run(settings, msgs, args.partitions, args.stage2)
        for stage in stages:
            stage.joins.close()
    c = sum((stage.counters for stage in stages), Counter())
    print(f"stage 1, {events:,} events in {len(msgs):,} messages of {args.batch}, "
          f"{args.partitions} partitions ({args.store} index)")
    print(f"  events per CPU-second   {events / cpu:12,.0f}")
    print(f"  orjson.loads alone      {events / floor:12,.0f}  ({cpu / floor:.0f}x)")
    if merge is not None:
        print(f"  stage 2 alone           {events / merge.cpu:12,.0f}  ({merge.windows:,} "
              f"windows' results; both stages {events / (cpu + merge.cpu):,.0f})")
    print(f"  labels joined {c['joined_labels'] + c['joined_early_labels']:,}, "
          f"expired early {c['expired_early_labels']:,}, unlabelled {c['expired_unlabelled']:,}")


if __name__ == "__main__":
    main()
