"""Corrections to faust-streaming 0.15.3, applied by :func:`apply`.

1. ``Consumer.getmany`` can hand over records that leave a hole in a partition's offsets
   (a fetch that straddles a rebalance; records of a partition paused mid-batch are
   dropped). Faust records such a hole as a "gap", counts it as acked and commits past it.
   Replacing ``getmany`` fixed one case and stalled partitions in others, so it is not
   patched: :mod:`stream.runtime.contiguity` fills every hole from the broker before the agent goes
   past it. Gaps are still logged as warnings here.
2. A stream that skips a message because a rebalance is under way (flow control paused, or
   the message is from an earlier consumer generation) still acks it, on the grounds that
   a skipped message would otherwise add to the lag. But that message is read again after
   the seek to the committed offsets; the stray ack lets the next commit pass it, and a
   crash before the second reading is processed loses it (our SIGKILL test lost the first
   message of a partition this way: acked while skipped at start-up, processed when read
   again, then the worker was killed before its window closed). Only messages a stream
   actually handed over (Faust marks them "tracked") are acked now.
3. Faust's stream-buffer flow control re-activates a partition when its buffer drains
   (``Consumer.on_buffer_drop``) without checking whether it was paused with
   ``pause_partitions``: a paused partition silently resumes. Our label flow control pauses
   a partition's labels while too many wait for their predictions; with the original method
   that pause lasted until the next buffer drain.

Reading, not patching: :func:`client_position` tells how far the Kafka client under Faust
has returned a partition's records to Faust, which :mod:`stream.runtime.contiguity` needs to tell
messages Faust dropped from messages Faust has not fetched yet.

(Faust's pre-commit producer flush is not reliable either; we do not patch it but make acks
wait for the changelog writes themselves: see :mod:`stream.runtime.durable`.)
"""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)
_original_add_gap = Consumer._add_gap
_original_ack = Consumer.ack


def _ack(self: Any, message: Any) -> bool:
    """Faust's ``Consumer.ack``, except for messages no stream handed over (see 2)."""
    if not message.tracked:
        return False
    result: bool = _original_ack(self, message)
    return result


async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    log.warning("offset gap on %s: %d..%d will be committed as if processed",
                tp, offset_from, offset_to)
    await _original_add_gap(self, tp, offset_from, offset_to)


def _on_buffer_drop(self: Any, tp: Any) -> None:
    buffered = self._buffered_partitions
    if tp in buffered:
        buffered.discard(tp)
        if tp not in self._paused_partitions:
            self._get_active_partitions().add(tp)


def client_position(consumer: Any, tp: Any) -> int | None:
    """The offset after the last record of ``tp`` that aiokafka (0.14, under faust-streaming
    0.15.3) has returned to Faust's fetcher; None when unknown (not assigned, no position
    yet, or these internals changed). aiokafka moves it when it hands records over, not
    when it fetches them. It lives in Faust's consumer thread; reading an int from here is
    safe."""
    try:
        assignment = consumer._thread._consumer._subscription.subscription.assignment
        state = assignment.state_value(tp) if assignment is not None else None
        if state is None or not state.has_valid_position:
            return None
        return int(state.position)
    except (AttributeError, AssertionError):
        return None


def apply() -> None:
    """Idempotent: patch the class before any consumer binds the methods."""
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]
    Consumer.ack = _ack  # type: ignore[method-assign]
    Consumer.on_buffer_drop = _on_buffer_drop  # type: ignore[method-assign]
