"""Corrections to faust-streaming 0.15.3, applied by :func:`apply`.

1. ``Consumer.getmany`` can hand over records that then leave a hole in a partition's
   offsets. Faust records such a hole as a "gap", counts it as acked and commits past it:
   the messages in it are never processed and never read again. Two ways in:

   - it reads the consumer generation *after* waiting for a fetch, so records fetched
     before a rebalance, from the old positions, pass for the new generation's and arrive
     ahead of the seek to the committed offsets;
   - it drops fetched records of a partition that stopped being "active" while the batch is
     handed out, although the client's fetch position has already moved past them. Right
     for partitions Faust pauses around a rebalance (they are sought back), wrong for a
     partition our label flow control pauses mid-batch.

   Our SIGKILL test lost a partials message the first way (seen with the warning below);
   the second was found reading the code beside it. The replacement takes the generation
   before the fetch, stops handing over at a rebalance (the new assignment seeks to the
   committed offsets and reads the rest again), and hands over the records of partitions
   in :data:`held` (paused by us) as well as those of active ones. (Handing over records of
   partitions Faust paused made a partition stall in our 2-worker test: their offsets
   moved the read offset on, and the re-read records were then dropped as already read.)
   Gaps are logged as warnings: on our topics (no compaction, no transactions) there
   should be none.
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

(Faust's pre-commit producer flush is not reliable either; we do not patch it but make acks
wait for the changelog writes themselves: see :mod:`stream.durable`.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)

#: Partitions our own flow control paused (the app keeps this up to date): their records
#: already fetched are still handed over, so a pause never leaves an offset gap.
held: set[Any] = set()
_original_add_gap = Consumer._add_gap
_original_ack = Consumer.ack


def _ack(self: Any, message: Any) -> bool:
    """Faust's ``Consumer.ack``, except for messages no stream handed over (see 2)."""
    if not message.tracked:
        return False
    result: bool = _original_ack(self, message)
    return result


async def _getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    """Faust's ``Consumer.getmany`` without its late per-record "active" check (see 1)."""
    # The generation before the fetch, not after (as Faust takes it): records fetched before
    # a rebalance, from the old positions, must not pass for the new generation's. They
    # did: after the seek to the committed offset they came in ahead of it, Faust saw an
    # offset gap, and committed the messages in between unprocessed.
    generation_id = self.app.consumer_generation_id
    records, _active = await self._wait_next_records(timeout)
    if records is None or self.should_stop:
        return
    if not self.flow_active:
        # As Faust does: a rebalance is under way; go back to the committed offsets.
        try:
            await self.perform_seek()
        except Exception as exc:  # Faust's own handling, kept
            log.warning("exception performing seek when flow not active %s", exc)
        return
    for tp, record in self.scheduler.iterate(records):
        # A rebalance from here on: stop; the new assignment seeks to committed offsets,
        # so what is not handed over now is read again.
        if not self.flow_active or self.app.consumer_generation_id != generation_id:
            break
        # Faust's own filter stays for partitions it paused (around a rebalance, records
        # from before the seek must not advance the read offset, or the re-read ones are
        # dropped as already read); records of a partition *we* paused are handed over.
        if (_active is None or tp in _active or tp in self._buffered_partitions
                or tp in held):
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, self._to_message(tp, record)


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


def apply() -> None:
    """Idempotent: patch the class before any consumer binds the methods."""
    Consumer.getmany = _getmany  # type: ignore[method-assign]
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]
    Consumer.ack = _ack  # type: ignore[method-assign]
    Consumer.on_buffer_drop = _on_buffer_drop  # type: ignore[method-assign]
