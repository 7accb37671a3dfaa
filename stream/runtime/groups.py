"""Stage 1 runs its plans per group of messages, not per message.

Each input message is still handled alone, in offset order (joins, closes, lateness: no
figure depends on how messages are grouped), and the frames it plans are sent in the order
they were planned, only later. What costs the same for one event as for a hundred (sending
and awaiting the frames, the checkpoint check, the acks, flow control, backpressure) then
runs once per group. With one-event messages those steps were 11% of the worker's main
thread (py-spy), about a fifth of stage 1's share; the one-event backlog of
``load_tests/bench_worker.py`` rose about 6% (docs/benchmarks.md).

A group ends when the stream has nothing more handed over (so a quiet stream runs each
message's plan at once: no latency is added), at :data:`GROUP_MAX` messages, and at every
tick. Faust's fetch loop and the agent share one event loop and hand messages over one at
a time, so the agent gives the loop a few turns (:data:`YIELDS`) before deciding that
nothing more is coming: without them a group was one message long.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

from stream.windows.partition import PartitionStage
from stream.windows.plan import Plan

#: Messages per group at most (Faust's stream buffer holds 64).
GROUP_MAX: Final = 64
#: Event-loop turns the agent waits for the next message before it ends a group.
YIELDS: Final = 3


class Buffer(Protocol):
    def empty(self) -> bool: ...


async def more_waiting(buffer: Buffer, yields: int = YIELDS) -> bool:
    """Whether another message is handed over within ``yields`` turns of the event loop."""
    for _ in range(yields):
        if not buffer.empty():
            return True
        await asyncio.sleep(0)
    return not buffer.empty()


class PlanQueue:
    """The plans of the current group, per stage (not per partition number: a partition
    revoked and assigned again mid-group has a new stage), in the order they were made."""

    def __init__(self) -> None:
        self._plans: dict[PartitionStage, list[Plan]] = {}
        self.messages = 0
        #: Groups taken and the messages in them, since the start (``/stats``).
        self.taken = {"groups": 0, "messages": 0}

    def add(self, stage: PartitionStage, plan: Plan, message: bool = True) -> None:
        self._plans.setdefault(stage, []).append(plan)
        self.messages += message

    def take(self) -> list[tuple[PartitionStage, list[Plan]]]:
        """The group's plans, and a new group."""
        self.taken["groups"] += 1
        self.taken["messages"] += self.messages
        groups, self._plans, self.messages = list(self._plans.items()), {}, 0
        return groups

    def full(self) -> bool:
        return self.messages >= GROUP_MAX

