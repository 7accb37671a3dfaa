"""Stage 1's small records: what a partition keeps per open window and per waiting message,
and the plan it hands the agent (:mod:`stream.windows.partition`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream.metrics.segments import SegmentRouter
from stream.metrics.window import WindowState

#: Events (or labelled pairs) a window collects before adding them to its states in one
#: batch. A window state's update costs about the same for 1 row as for hundreds (numpy per
#: column), so one-event messages paid it per event; the states are batch-invariant (a test
#: checks that any split gives the same bytes), so folding later changes no figure.
FOLD_AT = 512


@dataclass(slots=True)
class PendingAck:
    """A prediction message waiting for the windows it fed to close."""

    handle: Any
    remaining: int


@dataclass(slots=True)
class OpenWindow:
    router: SegmentRouter
    states: dict[str, WindowState] = field(default_factory=dict)
    waiting: list[PendingAck] = field(default_factory=list)
    events: int = 0
    #: Events not yet added to ``states`` (see :data:`FOLD_AT`).
    pending: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """What the agent must do, in order: send ``frames`` (awaiting delivery), send
    ``broadcast`` to every partials partition, then
    :meth:`stream.windows.partition.PartitionStage.commit`, then
    ack what it returns once the table writes made so far are delivered."""

    frames: list[tuple[bytes, bytes]] = field(default_factory=list)
    broadcast: list[bytes] = field(default_factory=list)
    #: Models whose windows closed further: the new mark, persisted by ``commit``.
    closed_through: dict[str, int] = field(default_factory=dict)
    acks: list[Any] = field(default_factory=list)
    #: Planned by a tick: a checkpoint is due.
    tick: bool = False


def merge_plans(plans: list[Plan]) -> Plan:
    """What :meth:`stream.windows.partition.PartitionStage.commit` needs of several plans
    run as one group (their frames already sent, in order): every ack in order, each model's
    latest closed-through mark, a tick if any was one.

    >>> a = Plan(closed_through={"m": 10}, acks=[1])
    >>> b = Plan(closed_through={"m": 20, "n": 5}, acks=[2], tick=True)
    >>> merged = merge_plans([a, b])
    >>> merged.closed_through, merged.acks, merged.tick, merged.frames
    ({'m': 20, 'n': 5}, [1, 2], True, [])
    """
    if len(plans) == 1:
        return plans[0]
    merged = Plan()
    for plan in plans:
        merged.closed_through.update(plan.closed_through)  # marks only move forward
        merged.acks.extend(plan.acks)
        merged.tick |= plan.tick
    return merged
