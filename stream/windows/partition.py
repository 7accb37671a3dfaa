"""Stage 1, one per input partition: join, open windows, watermark, close, revisions.

Where the heavy per-event work happens (next to the events). Pure logic: the Faust agent
(:mod:`stream.runtime.app`) feeds it decoded batches and ticks, sends the frames it plans,
then calls :meth:`PartitionStage.commit`, which takes checkpoints and returns the messages
to ack.

No loss, no double count, without Kafka transactions:

- a prediction message is acked only once every window it fed is closed, its partial sent
  (delivery awaited) and its model's new ``closed_through`` written, after the join
  entries, at a checkpoint (event time is per model: :mod:`stream.windows.eventtime`). Until then
  its offset is not committed, so after a crash it is read again and the open window is
  rebuilt from exactly the same events; events of windows already closed are skipped;
- the join table says, per request, the position of the event that wrote it: a replay is
  recognised and processed again, a duplicate (another position) is ignored;
- the labelled side of every window is rebuilt from the join table after a restart (see
  :mod:`stream.join.entries`), and re-sent: stage 2 replaces a source's labelled side, so a re-send
  changes nothing.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from stream.config import Settings
from stream.events import EventKind, Rejected
from stream.ingest.counts import DUPLICATE_LABELS, DUPLICATE_PREDICTIONS, IngestLedger
from stream.join.entries import Entry, PerfWindow, position, prediction_fields
from stream.join.horizon import LabelHorizon
from stream.join.store import MARK_PREFIX, JoinStore
from stream.metrics.segments import SegmentRouter
from stream.metrics.window import WindowState
from stream.windows.eventtime import ModelClock
from stream.windows.frames import WindowId, encode_frame, window_start
from stream.windows.plan import FOLD_AT, OpenWindow, PendingAck, Plan, group_pairs

Clock = Callable[[], float]  # wall clock, s: caught-up times are compared across workers
log = logging.getLogger(__name__)


class PartitionStage:
    """Stage 1 state and logic for one partition of the (co-partitioned) input topics."""

    def __init__(
        self,
        partition: int,
        settings: Settings,
        joins: MutableMapping[bytes, bytes],
        index: MutableMapping[bytes, bytes] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.partition = partition
        self.settings = settings
        self.joins = JoinStore(partition, joins, index)
        self.clock = clock
        win = settings.windows
        self.size_ms = win.size_s * 1000
        self.horizon_ms = win.label_horizon_s * 1000
        self.early_ttl_ms = win.early_label_ttl_s * 1000
        self.segment_keys = settings.metrics.routed_segments()
        self.local_cap = 4 * settings.metrics.segment_cap
        self.clocks: dict[str, ModelClock] = {}
        #: Labels whose prediction has not come (no model clock yet): they expire by the
        #: newest prediction time of any model here.
        self.early_expiry: list[tuple[int, bytes]] = []
        #: The labels read here, and the horizon clocks they allow (the agent sets its
        #: ``safe_offset`` after each message; where nobody tells, as in tests: all read).
        self.horizon = LabelHorizon(self.horizon_ms)
        #: Latest caught-up time of this partition (see :class:`stream.windows.eventtime.CatchUp`).
        self.caught_up: float | None = None
        self.open: dict[WindowId, OpenWindow] = {}
        self.perf: dict[WindowId, PerfWindow] = {}
        self.perf_waiting: dict[WindowId, list[PendingAck]] = {}
        self.early_pending = 0  # labels in the table still waiting for their prediction
        self.counters: Counter[str] = Counter()
        #: Handles waiting for the next checkpoint (see :meth:`commit`).
        self.held: list[Any] = []
        self.last_revision = clock()
        self._rebuild_from_table()
        #: Duplicates and rejects per window (the ``ingest`` rows; stream.ingest.counts).
        self.ledger = IngestLedger(partition, joins, self.size_ms, self.horizon_ms,
                                   lambda m: c.horizon_ts if (c := self.clocks.get(m)) else None,
                                   clock)
        self._changed(self.ledger.counts)  # re-sent: stage 2 replaces, never adds

    # ------------------------------------------------------------------ helpers
    def _mark_key(self, model_id: str) -> bytes:
        """The model's closed-through mark, kept in the join table (see :meth:`commit`)."""
        return f"{MARK_PREFIX.decode()}{self.partition}:{model_id}".encode()

    def _clock(self, model_id: str) -> ModelClock:
        """The model's clock here; created on its first event, with the closed-through
        mark the table kept (re-read while it may still be being restored)."""
        clock = self.clocks.get(model_id)
        if clock is None:
            lateness = self.settings.metrics.model(model_id).allowed_lateness_s
            if lateness is None:
                lateness = self.settings.windows.allowed_lateness_s
            clock = self.clocks[model_id] = ModelClock(lateness * 1000, last_data=self.clock())
        stored = self.joins.table.get(self._mark_key(model_id))
        if stored is not None and int(stored) > clock.closed_through:
            clock.closed_through = int(stored)
        return clock

    def _newest(self) -> int:
        """Newest prediction time of any model here: the clock of early labels, which do
        not know their prediction's window yet."""
        return max((c.max_ts for c in self.clocks.values()), default=0)

    def _new_state(self, model_id: str) -> WindowState:
        metrics = self.settings.metrics
        return WindowState.for_model(metrics.model(model_id), metrics)

    def _perf_window(self, wid: WindowId) -> PerfWindow:
        perf = self.perf.get(wid)
        if perf is None:
            perf = self.perf[wid] = PerfWindow(SegmentRouter(self.segment_keys, self.local_cap))
        return perf

    def _add_labelled(self, wid: WindowId, entries: list[Entry]) -> None:
        perf = self._perf_window(wid)
        perf.pending.extend(e.pair() for e in entries)
        perf.dirty = True
        if len(perf.pending) >= FOLD_AT:
            self._fold_labelled(wid, perf)

    def _fold_labelled(self, wid: WindowId, perf: PerfWindow) -> None:
        """Add the window's collected labelled pairs to its states, in one batch."""
        for seg, group in group_pairs(perf.router, perf.pending).items():
            state = perf.states.get(seg)
            if state is None:
                state = perf.states[seg] = self._new_state(wid.model_id)
            state.add_labelled(group)
        perf.pending = []

    def _fold(self, wid: WindowId, window: OpenWindow) -> None:
        """Add the window's collected events to its states, in one batch."""
        for seg, group in window.router.group(window.pending).items():
            state = window.states.get(seg)
            if state is None:
                state = window.states[seg] = self._new_state(wid.model_id)
            state.add_predictions(group)
        window.pending = []

    def _expire_later(self, entry: Entry, request_id: bytes) -> None:
        at = entry.expires_at(self.size_ms, self.horizon_ms, self.early_ttl_ms)
        if entry.window is None:
            heapq.heappush(self.early_expiry, (at, request_id))
        else:  # the model's clock exists once it has an entry (no table read per event)
            clock = self.clocks.get(entry.window.model_id) or self._clock(entry.window.model_id)
            clock.expire_later(at, request_id)

    def _rebuild_from_table(self) -> None:
        """After (re)assignment: the labelled side and expiry queues from the join table."""
        labelled: dict[WindowId, list[Entry]] = {}
        for request_id, entry in self.joins.restore():
            self._expire_later(entry, request_id)
            if entry.window is None:
                self.early_pending += 1
                continue
            if entry.late:
                self._perf_window(entry.window).late += 1
                self.perf[entry.window].dirty = True
            if entry.has_label:
                labelled.setdefault(entry.window, []).append(entry)
        for wid, entries in labelled.items():
            self._add_labelled(wid, entries)

    # ------------------------------------------------------------------ events
    def on_predictions(self, events: list[dict[str, Any]], offset: int, handle: Any) -> Plan:
        """A batch of valid predictions from one message; ``handle`` is acked when safe."""
        now = self.clock()
        clocks: dict[str, ModelClock] = {}  # this batch's models, marks re-read once
        resumed = False
        by_window: dict[WindowId, list[dict[str, Any]]] = {}
        labelled: dict[WindowId, list[Entry]] = {}
        first_late: list[WindowId] = []
        # Per (start, model, version) seen in this message: the window, its JSON form and
        # its entries' expiry time (a message's events share one or two windows).
        windows: dict[tuple[int, str, str], tuple[WindowId, list[Any], int]] = {}
        size_ms, segment_keys = self.size_ms, self.segment_keys
        for index, event in enumerate(events):
            pos = position(offset, index)
            request_id = event["request_id"].encode()
            ts = int(event["timestamp"])
            model_id = event["model_id"]
            clock = clocks.get(model_id)
            if clock is None:
                clock = clocks[model_id] = self._clock(model_id)
                clock.last_data = now
                resumed |= clock.idle
                clock.idle = False
            start = ts - ts % size_ms
            known = windows.get((start, model_id, event["model_version"]))
            if known is None:
                wid = WindowId(start, model_id, event["model_version"])
                known = windows[(start, model_id, wid.model_version)] = (
                    wid, wid.as_list(), start + size_ms + self.horizon_ms)
            wid = known[0]
            entry = self.joins.get(request_id)
            closed = start + size_ms <= clock.closed_through
            if entry is None:  # the usual case: a new request, no label yet
                outcome, segments = prediction_fields(event, segment_keys)
                self.joins.put_prediction(request_id, {
                    "p": self.partition, "r": event["request_id"], "pos": pos, "w": known[1],
                    "ts": ts, "o": outcome, "s": segments, "late": closed}, offset)
                clock.expire_later(known[2], request_id)
                if ts > clock.max_ts:
                    clock.max_ts = ts
                if closed:
                    self._count_late(wid, first_late)
                else:
                    by_window.setdefault(wid, []).append(event)
                continue
            if entry is not None and entry.pos is not None:
                if entry.pos != pos:
                    self.counters["duplicate_predictions"] += 1
                    self._changed(self.ledger.duplicate(wid, DUPLICATE_PREDICTIONS,
                                                        "prediction", offset))
                    continue
                # A replay after a restart: its pack is written again at the checkpoint
                # (with an on-disk table store, the local copy may hold a write whose
                # changelog message the crash lost, and the next owner would not see it).
                self.joins.touch(entry.pred_pack)
                if not closed:  # rebuild the open window
                    by_window.setdefault(wid, []).append(event)
                    clock.max_ts = max(clock.max_ts, ts)
                continue
            outcome, segments = prediction_fields(event, self.segment_keys)
            new = Entry(self.partition, event["request_id"], pos, wid, ts, outcome, segments,
                        late=closed)
            if entry is not None:  # the label came first
                new.label, new.lpos, new.lts = entry.label, entry.lpos, entry.lts
                self.early_pending -= 1
                labelled.setdefault(wid, []).append(new)
                self.counters["joined_early_labels"] += 1
                new.label_pack = entry.label_pack
            self.joins.put(request_id, new, "p", offset)
            self._expire_later(new, request_id)
            clock.max_ts = max(clock.max_ts, ts)
            if closed:
                self._count_late(wid, first_late)
            else:
                by_window.setdefault(wid, []).append(event)
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

    def _count_late(self, wid: WindowId, first_late: list[WindowId]) -> None:
        """Counted in the window's late_events row (stage 2 creates the window's rows if it
        never had an on-time event): nothing consumed goes uncounted."""
        self.counters["late_predictions"] += 1
        perf = self._perf_window(wid)
        if perf.late == 0:  # logged once per window: the first late one says why
            first_late.append(wid)
        perf.late += 1
        perf.dirty = True

    def on_labels(self, events: list[dict[str, Any]], offset: int, handle: Any) -> Plan:
        """A batch of valid labels; ``handle`` is acked once the labelled side of every
        window it changed has been sent (so a rebalance or crash before that replays it)."""
        labelled: dict[WindowId, list[Entry]] = {}
        for index, event in enumerate(events):
            lpos = position(offset, index)
            request_id = event["request_id"].encode()
            lts = int(event["timestamp"])
            entry = self.joins.get(request_id) or Entry(self.partition, event["request_id"])
            if entry.has_label:
                if entry.lpos != lpos:
                    self.counters["duplicate_labels"] += 1
                    self._changed(self.ledger.duplicate(entry.window, DUPLICATE_LABELS,
                                                        "label", offset))
                else:  # a replay: in the labelled side already; its pack written again
                    self.joins.touch(entry.label_pack)
                continue
            model_id = event["model_id"]
            self.horizon.label_read(model_id, lts)
            entry.label, entry.lpos, entry.lts = event["label"], lpos, lts
            self.joins.put(request_id, entry, "l", offset)
            if entry.window is None:
                self.counters["early_labels"] += 1
                self.early_pending += 1
                self._expire_later(entry, request_id)
            else:
                labelled.setdefault(entry.window, []).append(entry)
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

    def _changed(self, windows: Iterable[WindowId]) -> None:
        """Ingest counts changed: the windows' perf frames carry them (sent when due)."""
        for wid in windows:
            self._perf_window(wid).dirty = True

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
        open_by_model: dict[str, list[WindowId]] = {}
        for wid in self.open:
            open_by_model.setdefault(wid.model_id, []).append(wid)
        for model_id, clock in self.clocks.items():
            model_open = open_by_model.get(model_id, [])
            limit = window_start(max(clock.watermark(), 0), self.size_ms)
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
        if now - self.last_revision >= self.settings.windows.revision_interval_s:
            self.last_revision = now
            for wid, perf in sorted(self.perf.items()):
                if perf.dirty and wid not in self.open:
                    plan.frames.append(self._perf_frame(wid, perf, plan))
        self._expire(plan)
        if heartbeat or plan.closed_through:
            plan.broadcast.append(encode_frame("progress", self.partition, {
                "ct": {m: c.closed_through for m, c in sorted(self.clocks.items())
                       if not c.idle},
                "hz": {m: c.horizon_ts for m, c in sorted(self.clocks.items())
                       if not c.idle},
                "cu": self.caught_up}, {}))
        return plan

    def _close(self, wid: WindowId, plan: Plan) -> None:
        window = self.open.pop(wid)
        self._fold(wid, window)
        header = {"wid": wid.as_list(), "n": window.events}
        plan.frames.append((wid.key(), encode_frame("partial", self.partition, header,
                                                    window.states)))
        perf = self.perf.get(wid)
        if perf is not None:
            plan.frames.append(self._perf_frame(wid, perf, plan))
        for pending in window.waiting:
            pending.remaining -= 1
            if pending.remaining == 0:
                plan.acks.append(pending.handle)

    def _perf_frame(self, wid: WindowId, perf: PerfWindow, plan: Plan) -> tuple[bytes, bytes]:
        perf.dirty = False
        self._fold_labelled(wid, perf)
        for pending in self.perf_waiting.pop(wid, []):
            pending.remaining -= 1
            if pending.remaining == 0:
                plan.acks.append(pending.handle)
        header = {"wid": wid.as_list(), "lab": perf.labelled, "late": perf.late,
                  "ing": self.ledger.window(wid)}
        return wid.key(), encode_frame("perf", self.partition, header, perf.states)

    def _expire(self, plan: Plan) -> None:
        """Drop entries past the label horizon (or early labels past their TTL).

        The clock is each model's horizon clock (:mod:`stream.join.horizon`; for early labels,
        the newest prediction time of any model): label times say when an outcome was
        observed (often long after), and would expire labels whose predictions are merely
        still in flight."""
        self.horizon.advance(self.clocks)
        due: list[tuple[int, bytes]] = []
        for clock in self.clocks.values():
            due.extend(clock.due())
        newest = self._newest()
        while self.early_expiry and self.early_expiry[0][0] < newest:
            due.append(heapq.heappop(self.early_expiry))
        for at, request_id in due:
            entry = self.joins.get(request_id)
            if entry is None:
                continue
            if entry.expires_at(self.size_ms, self.horizon_ms, self.early_ttl_ms) != at:
                continue  # updated since (an early label that found its prediction)
            self.joins.drop(request_id, entry)
            if entry.window is None:
                self.counters["expired_early_labels"] += 1
                self.early_pending -= 1
            elif not entry.has_label:
                self.counters["expired_unlabelled"] += 1
        now_ms = int(self.clock() * 1000)
        for wid, perf in list(self.perf.items()):
            model = self.clocks.get(wid.model_id)
            if model is not None:
                past = wid.end(self.size_ms) < model.horizon_ts - self.horizon_ms
            else:  # only dead letters or duplicates (stream.ingest.counts): the wall clock
                past = wid.end(self.size_ms) < now_ms - self.horizon_ms
            if past and wid not in self.open:
                if perf.dirty:  # its last labels, before the window is forgotten
                    plan.frames.append(self._perf_frame(wid, perf, plan))
                del self.perf[wid]
        self.ledger.retain(self.perf)

    def labels_too_far_ahead(self) -> bool | None:
        """True: pause reading labels (too many wait for predictions); False: resume
        (half drained); None: leave as is. Keeps the join state bounded under a backlog."""
        limit = self.settings.windows.max_early_labels
        if self.early_pending > limit:
            return True
        if self.early_pending <= limit // 2:
            return False
        return None

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
        self.joins.checkpoint()
        ledger = self.ledger.checkpoint()
        if ledger is not None:
            self.joins.table[self.ledger.key] = ledger
        for model_id, closed_through in plan.closed_through.items():
            self.joins.table[self._mark_key(model_id)] = str(closed_through).encode()
        handles, self.held = self.held, []
        return handles

    # ------------------------------------------------------------------ introspection
    def stats(self) -> dict[str, Any]:
        return {
            "open_windows": len(self.open),
            "open_events": sum(w.events for w in self.open.values()),
            "perf_windows": len(self.perf),
            "join_entries_tracked": len(self.early_expiry) + sum(
                c.waiting() for c in self.clocks.values()),
            "early_labels_waiting": self.early_pending,
            "caught_up": self.caught_up,
            "labels_safe_offset": self.horizon.safe_offset,
            "models": {m: {"closed_through": c.closed_through, "max_event_time": c.max_ts,
                           "horizon_clock": c.horizon_ts,
                           "newest_label": self.horizon.newest_label.get(m),
                           "idle": c.idle} for m, c in sorted(self.clocks.items())},
            **self.counters,
        }

