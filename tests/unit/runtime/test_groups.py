"""Stage 1's groups of messages (stream.runtime.groups): when a group ends, and what the
checkpoint of a group sees (stream.windows.plan.merge_plans)."""

from __future__ import annotations

import asyncio
from typing import Any

from stream.runtime.groups import GROUP_MAX, PlanQueue, more_waiting
from stream.windows.plan import Plan, merge_plans


def test_more_waiting_sees_a_message_handed_over_within_the_turns() -> None:
    async def run(delay_turns: int, yields: int) -> bool:
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def fetch_loop() -> None:  # hands a message over after some loop turns
            for _ in range(delay_turns):
                await asyncio.sleep(0)
            queue.put_nowait(1)

        task = asyncio.ensure_future(fetch_loop())
        more = await more_waiting(queue, yields)
        await task
        return more

    assert asyncio.run(run(delay_turns=0, yields=3))
    assert asyncio.run(run(delay_turns=2, yields=3))
    assert not asyncio.run(run(delay_turns=6, yields=3))  # a quiet stream: the group ends
    assert not asyncio.run(run(delay_turns=1, yields=0))


def test_more_waiting_on_a_buffer_already_holding_messages_does_not_yield() -> None:
    class Held:
        def empty(self) -> bool:
            return False

    async def run() -> bool:
        turned: list[int] = []
        asyncio.get_running_loop().call_soon(turned.append, 1)
        more = await more_waiting(Held())
        return more and not turned

    assert asyncio.run(run())


def test_plan_queue_keeps_each_stage_s_plans_in_order_and_counts_messages() -> None:
    a, b = object(), object()  # stand for two stages (a partition assigned again: a new one)
    queue = PlanQueue()
    plans = [Plan(acks=[i]) for i in range(4)]
    queue.add(a, plans[0])  # type: ignore[arg-type]
    queue.add(b, plans[1])  # type: ignore[arg-type]
    queue.add(a, plans[2])  # type: ignore[arg-type]
    queue.add(a, plans[3], message=False)  # a tick's plan: not a message
    assert queue.messages == 3
    taken: list[tuple[Any, list[Plan]]] = queue.take()
    assert taken == [(a, [plans[0], plans[2], plans[3]]), (b, [plans[1]])]
    assert queue.take() == [] and queue.messages == 0
    assert queue.taken == {"groups": 2, "messages": 3}  # /stats: messages per group


def test_plan_queue_is_full_at_group_max_messages() -> None:
    queue = PlanQueue()
    stage: Any = object()
    for _ in range(GROUP_MAX - 1):
        queue.add(stage, Plan())
    assert not queue.full()
    queue.add(stage, Plan())
    assert queue.full()


def test_merge_plans_keeps_acks_in_order_the_latest_marks_and_any_tick() -> None:
    plans = [Plan(closed_through={"m": 10}, acks=["a"]),
             Plan(acks=["b"]),
             Plan(closed_through={"m": 30, "n": 5}, acks=["c", "d"]),
             Plan(tick=True)]
    merged = merge_plans(plans)
    assert merged.acks == ["a", "b", "c", "d"]
    assert merged.closed_through == {"m": 30, "n": 5}
    assert merged.tick
    assert not merge_plans(plans[:3]).tick
    assert merge_plans([plans[0]]) is plans[0]
