"""Stage 1, one per input partition: join, open windows, watermark, close, revisions.

Where the heavy per-event work happens (next to the events). Pure logic: the Faust agent
(:mod:`stream.runtime.app`) feeds it decoded batches and ticks, sends the frames it plans,
then calls :meth:`PartitionStage.commit`, which takes checkpoints and returns the messages
to ack.

No loss, no double count, without Kafka transactions:

- a prediction message is acked only once every window it fed is closed, its partial sent
  (delivery awaited) and its model's new ``closed_through`` written, after the join
  entries, at a checkpoint (event time is per model: :mod:`stream.windows.eventtime`).
  Until then its offset is not committed, so after a crash it is read again and the open
  window is rebuilt from exactly the same events; events of windows already closed are
  skipped;
- the join table says, per request, the position of the event that wrote it: a replay is
  recognised and processed again, a duplicate (another position) is ignored;
- the labelled side of every window is rebuilt from the join table after a restart (see
  :mod:`stream.join.entries`), and re-sent: stage 2 replaces a source's labelled side, so a
  re-send changes nothing.

The state those rules keep, and its upkeep (rebuild, folding, expiry), is the base class in
:mod:`stream.windows.partition_state`; this module is what events and ticks do.
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

from stream.events import EventKind, Rejected
from stream.ingest.counts import DUPLICATE_LABELS, DUPLICATE_PREDICTIONS
from stream.join.entries import LabelledPair, labelled_pair, position, prediction_fields
from stream.metrics.segments import SegmentRouter
from stream.windows.eventtime import ModelClock
from stream.windows.frames import WindowId, encode_frame, window_start
from stream.windows.partition_state import PartitionState
from stream.windows.plan import FOLD_AT, OpenWindow, PendingAck, Plan

log = logging.getLogger(__name__)


class PartitionStage(PartitionState):
    """Stage 1 logic for one partition: events and ticks in, a :class:`Plan` out
    (state and its upkeep: :class:`stream.windows.partition_state.PartitionState`)."""

    # ------------------------------------------------------------------ events
    def on_predictions(self, events: list[dict[str, Any]], offset: int, handle: Any) -> Plan:
        """A batch of valid predictions from one message; ``handle`` is acked when safe."""
        now = self.clock()
        clocks: dict[str, ModelClock] = {}  # this batch's models, marks re-read once
        resumed = False
        by_window: dict[WindowId, list[dict[str, Any]]] = {}
        labelled: dict[WindowId, list[LabelledPair]] = {}
        first_late: list[WindowId] = []
        # Per (start, model, version) seen in this message: the window, its JSON form and
        # its entries' expiry time (a message's events share one or two windows).
        windows: dict[tuple[int, str, str], tuple[WindowId, list[Any], int]] = {}
        size_ms, segment_keys, partition = self.size_ms, self.segment_keys, self.partition
        base = position(offset, 0)
        # New requests (the usual case) go into their window's pack after the loop, one call
        # per window instead of one per event: a request finds an entry of its own message
        # only if it comes twice in it, and such a message puts each one at once.
        ids = [event["request_id"].encode() for event in events]
        deferred = len(ids) > 1 and len(set(ids)) == len(ids)
        new: dict[WindowId, list[tuple[bytes, dict[str, Any]]]] = {}
        for index, event in enumerate(events):
            pos = base | index
            request_id = ids[index]
            ts = int(event["timestamp"])
            model_id = event["model_id"]
            clock = clocks.get(model_id)
            if clock is None:
                new_here = model_id not in self.clocks
                clock = clocks[model_id] = self._clock(model_id)
                clock.last_data = now
                resumed |= clock.idle or new_here
                clock.idle = False
            start = ts - ts % size_ms
            version = event["model_version"]
            known = windows.get((start, model_id, version))
            if known is None:
                wid = WindowId(start, model_id, version)
                known = windows[(start, model_id, version)] = (
                    wid, wid.as_list(), start + size_ms + self.horizon_ms)
            wid = known[0]
            doc = self.joins.get_doc(request_id)
            closed = start + size_ms <= clock.closed_through
            if doc is not None and "pos" in doc:
                if doc["pos"] != pos:
                    self.counters["duplicate_predictions"] += 1
                    self._changed(self.ledger.duplicate(wid, DUPLICATE_PREDICTIONS,
                                                        "prediction", offset))
                    continue
                # A replay after a restart: its pack is written again at the checkpoint
                # (with an on-disk table store, the local copy may hold a write whose
                # changelog message the crash lost, and the next owner would not see it).
                self.joins.touch(_pack(doc, "pp"))
                if not closed:  # rebuild the open window
                    by_window.setdefault(wid, []).append(event)
                    clock.max_ts = max(clock.max_ts, ts)
                continue
            outcome, segments = prediction_fields(event, segment_keys)
            part = {"p": partition, "r": event["request_id"], "pos": pos, "w": known[1],
                    "ts": ts, "o": outcome, "s": segments, "late": closed}
            if doc is None:  # the usual case: a new request, no label yet
                if deferred:
                    new.setdefault(wid, []).append((request_id, part))
                else:
                    self.joins.put_predictions([(request_id, part)], offset, wid)
            else:  # the label came first: it moves to the window's label pack
                doc.update(part)
                self.joins.put_doc(request_id, doc, "p", offset, wid)
                self.early_pending -= 1
                self.joined_early.add((int(doc["lts"]) + self.early_ttl_ms, request_id))
                self.counters["joined_early_labels"] += 1
                labelled.setdefault(wid, []).append(
                    labelled_pair(part["r"], outcome, segments, doc["lab"]))
            clock.expire_later(known[2], request_id)
            if ts > clock.max_ts:
                clock.max_ts = ts
            if closed:
                self._count_late(wid, first_late)
            else:
                by_window.setdefault(wid, []).append(event)
        for wid, added in new.items():
            self.joins.put_predictions(added, offset, wid)
        for clock in clocks.values():
            clock.processed(offset)
        for wid in first_late:
            log.info("partition %d: first late predictions of model %s window %d at offset %d "
                     "(its windows are closed through %d)", self.partition, wid.model_id,
                     wid.window_start, offset, self.clocks[wid.model_id].closed_through)
        for wid, entries in labelled.items():
            self._add_labelled(wid, entries)
        pending = PendingAck(handle, len(by_window))
        for wid, batch in by_window.items():
            window = self.open.get(wid)
            if window is None:
                window = self.open[wid] = OpenWindow(
                    SegmentRouter(self.segment_keys, self.local_cap))
            window.pending.extend(batch)
            if len(window.pending) >= FOLD_AT:
                self._fold(wid, window)
            window.events += len(batch)
            window.waiting.append(pending)
        plan = self.advance(heartbeat=resumed)  # say at once that a model is back here
        if not by_window:
            plan.acks.append(handle)
        return plan

    def on_labels(self, events: list[dict[str, Any]], offset: int, handle: Any) -> Plan:
        """A batch of valid labels; ``handle`` is acked once the labelled side of every
        window it changed has been sent (so a rebalance or crash before that replays it)."""
        labelled: dict[WindowId, list[LabelledPair]] = {}
        for index, event in enumerate(events):
            lpos = position(offset, index)
            request_id = event["request_id"].encode()
            lts = int(event["timestamp"])
            doc = self.joins.get_doc(request_id)
            if doc is not None and "lpos" in doc:
                if doc["lpos"] != lpos:
                    self.counters["duplicate_labels"] += 1
                    window = WindowId.from_list(doc["w"]) if "w" in doc else None
                    self._changed(self.ledger.duplicate(window, DUPLICATE_LABELS,
                                                        "label", offset))
                else:  # a replay: in the labelled side already; its pack written again
                    self.joins.touch(_pack(doc, "lp"))
                continue
            self.horizon.label_read(event["model_id"], lts)
            if doc is None:  # an early label: its prediction has not come
                doc = {"p": self.partition, "r": event["request_id"]}
            doc.update(lab=event["label"], lpos=lpos, lts=lts)
            if "w" not in doc:
                self.joins.put_doc(request_id, doc, "l", offset, None)
                self.counters["early_labels"] += 1
                self.early_pending += 1
                heapq.heappush(self.early_expiry, (lts + self.early_ttl_ms, request_id))
                continue
            wid = WindowId.from_list(doc["w"])
            self.joins.put_doc(request_id, doc, "l", offset, wid)
            labelled.setdefault(wid, []).append(
                labelled_pair(doc["r"], doc["o"], doc["s"], doc["lab"]))
            self.counters["joined_labels"] += 1
        for wid, entries in labelled.items():
            self._add_labelled(wid, entries)
        pending = PendingAck(handle, len(labelled))
        for wid in labelled:
            self.perf_waiting.setdefault(wid, []).append(pending)
        plan = self.advance()
        if not labelled:
            plan.acks.append(handle)
        return plan

    def on_rejected(self, rejects: list[Rejected], kind: EventKind, offset: int) -> None:
        """Count a message's dead letters in the windows they name (stream.ingest.counts)."""
        self._changed(self.ledger.rejected(rejects, kind, offset))

    def tick(self, caught_up: float | None = None) -> Plan:
        """Called on every tick message: idleness, revisions, expiry, heartbeat.

        ``caught_up``: this partition's caught-up time as of now (see
        :class:`stream.windows.eventtime.CatchUp`), None if not known. Only a tick passes it: only
        the broker knows whether messages wait unread, and a label that arrives while the
        predictions are held up (a slow fetch, a hole being read) must not close their
        window by idleness."""
        if caught_up is not None:
            self.caught_up = caught_up if self.caught_up is None else max(self.caught_up,
                                                                           caught_up)
        plan = self.advance(heartbeat=True, may_idle=True)
        plan.tick = True
        return plan

    def _idle_due(self, clock: ModelClock, model_open: bool) -> bool:
        """The partition was caught up to a moment the idle timeout after the model's last
        event here, and nothing of the model came: it is quiet here, not merely unread."""
        if self.caught_up is None or (clock.idle and not model_open):
            return False
        quiet_for = self.caught_up - clock.last_data
        return quiet_for >= self.settings.windows.idle_partition_timeout_s

    # ------------------------------------------------------------------ closing
    def advance(self, heartbeat: bool = False, may_idle: bool = False) -> Plan:
        """Close what each model's watermark (or idleness) allows; plan revisions, expiry."""
        plan = Plan()
        now = self.clock()
        open_by_model: dict[str, list[WindowId]] | None = None  # built when needed
        for model_id, clock in self.clocks.items():
            limit = window_start(max(clock.watermark(), 0), self.size_ms)
            if not may_idle and limit <= clock.closed_through:
                continue  # the usual case: its open windows all end past the mark
            if open_by_model is None:
                open_by_model = {}
                for wid in self.open:
                    open_by_model.setdefault(wid.model_id, []).append(wid)
            model_open = open_by_model.get(model_id, [])
            if may_idle and self._idle_due(clock, bool(model_open)):
                # Quiet here: close all it has; later events for these windows are late.
                seen = (window_start(clock.max_ts, self.size_ms) + self.size_ms
                        if clock.max_ts else 0)
                limit = max([limit, seen] + [w.end(self.size_ms) for w in model_open])
                clock.idle = True
                if model_open:
                    log.info("partition %d: model %s idle (caught up %.1f s past its last "
                             "prediction): closing %d windows (%d events) through %d",
                             self.partition, model_id, (self.caught_up or 0) - clock.last_data,
                             len(model_open), sum(self.open[w].events for w in model_open),
                             limit)
            for wid in sorted(w for w in model_open if w.end(self.size_ms) <= limit):
                self._close(wid, plan)
            if limit > clock.closed_through:
                clock.closed_through = limit
                plan.closed_through[model_id] = limit
        interval = self.settings.windows.revision_interval_s
        if now // interval > self.last_revision // interval:  # wall-clock aligned: the
            before, self.last_revision = self.last_revision, now  # same on every partition
            for wid, perf in sorted(self.perf.items()):
                if perf.dirty and wid not in self.open and (
                        self._young(wid) or self._slow_turn(wid, before, now)):
                    plan.frames.append(self._perf_frame(wid, perf, plan))
        self._expire()
        if heartbeat:
            self._send_progress(plan, now)
        elif plan.closed_through:  # no frame (each partial tells its window's stage 2
            self._forget(plan)     # partition), but windows past the horizon go as before
        return plan

    def _young(self, wid: WindowId) -> bool:
        """Whether a changed window's labelled side goes on every revision tick: it ended
        at most ``revision_slow_after_s`` before its model's newest prediction here. Older
        ones go once per ``revision_slow_interval_s`` (:meth:`_slow_turn`): labels days late
        change thousands of windows per interval (docs/delivery.md)."""
        clock = self.clocks.get(wid.model_id)
        return clock is None or clock.max_ts - wid.end(self.size_ms) <= (
            self.settings.windows.revision_slow_after_s * 1000)

    def _slow_turn(self, wid: WindowId, before: float, now: float) -> bool:
        """Whether an old window's slow interval of the wall clock turned since the last
        revision tick. Each window's interval starts at its own phase (consecutive windows
        a revision interval apart, on the revision ticks' boundaries), the same on every
        partition: stage 2 revises it once for all of them, and old windows' revisions
        spread over the interval instead of coming all at once."""
        windows = self.settings.windows
        slow = windows.revision_slow_interval_s
        phase = (wid.window_start // self.size_ms) * windows.revision_interval_s % slow
        return (now - phase) // slow > (before - phase) // slow

    def _send_progress(self, plan: Plan, now: float) -> None:
        """A progress frame to every partials partition, unless it would tell stage 2
        nothing new: the marks have stood still for ``windows.quiet_progress_s`` and a frame
        went less than that ago. While they move, and for that long after, one per tick: a
        window may wait for this partition's caught-up time (``cu``), as when every
        partition of a model closed it by idleness (docs/event-time.md).

        Windows past the horizon are forgotten (their last labels sent) first, so none of
        their labels comes after stage 2 hears the horizon moved; not on every message: it
        looks at every window."""
        active = [(m, c) for m, c in sorted(self.clocks.items()) if not c.idle]
        marks = ({m: c.closed_through for m, c in active}, {m: c.horizon_ts for m, c in active})
        if marks != self.marks:
            self.marks, self.marks_moved_at = marks, now
        quiet = self.settings.windows.quiet_progress_s
        if now - self.marks_moved_at >= quiet and now - self.progress_sent_at < quiet:
            return
        self.progress_sent_at = now
        self._forget(plan)
        plan.broadcast.append(encode_frame("progress", self.partition, {
            "ct": marks[0], "hz": marks[1], "cu": self.caught_up}, {}))

    def _close(self, wid: WindowId, plan: Plan) -> None:
        """Send the window's partial. It tells the window's stage 2 partition that this
        partition is done with the window (:meth:`stream.merge.stage.MergeStage._ready`), so
        a close sends no progress frame: the other partitions hear of the mark on the next
        tick. (A progress frame to every partition on every close was over half the messages
        of the partials topic in a backlog, each through Faust's per-message path twice.)"""
        window = self.open.pop(wid)
        self._fold(wid, window)
        perf = self.perf.get(wid)
        if perf is not None:  # first: the partial may be the last stage 2 waits for
            plan.frames.append(self._perf_frame(wid, perf, plan))
        header = {"wid": wid.as_list(), "n": window.events}
        plan.frames.append((wid.key(), encode_frame("partial", self.partition, header,
                                                    window.states)))
        for pending in window.waiting:
            pending.remaining -= 1
            if pending.remaining == 0:
                plan.acks.append(pending.handle)

    def commit(self, plan: Plan) -> list[Any]:
        """After the plan's frames were delivered: take a checkpoint if one is due, and
        return the handles that may be acked (once the writes made now are delivered).

        A checkpoint (:mod:`stream.join.store`) writes the join entries buffered since the
        last one, then the models' closed-through marks, into the same table, so one
        changelog partition carries them in that order: a mark never reaches Kafka before
        the entries of the events it covers (after a crash, events of a window at or below
        the mark are skipped as replays only if their entries come back). It is due on a
        tick, when a mark moves, or when ``worker.checkpoint_events`` entries wait.
        Between checkpoints the handles wait here: no offset is committed past an entry
        that is not in Kafka, and a message costs no table write of its own."""
        self.held.extend(plan.acks)
        due = plan.tick or bool(plan.closed_through) or (
            self.joins.buffered >= self.settings.worker.checkpoint_events)
        if not due:
            return []
        self.counters["checkpoints"] += 1
        self.joins.checkpoint()
        ledger = self.ledger.checkpoint()
        if ledger is not None:
            self.joins.table[self.ledger.key] = ledger
        for model_id, closed_through in plan.closed_through.items():
            self.joins.table[self._mark_key(model_id)] = str(closed_through).encode()
        handles, self.held = self.held, []
        return handles


def _pack(doc: dict[str, Any], name: str) -> bytes | None:
    key = doc.get(name)
    return None if key is None else str(key).encode()
