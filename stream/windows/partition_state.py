"""What stage 1 keeps for one partition, and how that state is rebuilt, folded and expired.

:class:`PartitionState` holds the partition's join store (:mod:`stream.join.store`), each
model's clock (:mod:`stream.windows.eventtime`), the open windows and the labelled side of
every window, and the ingest ledger (:mod:`stream.ingest.counts`). It rebuilds the labelled
sides and the expiry queues from the join table after an assignment (so a label is never
counted twice), folds collected events into window states in batches, builds a window's
``perf`` frame, and drops join entries past the label horizon (:mod:`stream.join.horizon`).
What events and ticks do with it (join, fill, close, ack) is
:class:`stream.windows.partition.PartitionStage`, which extends it: two modules by role,
each small enough to read at once.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from stream.config import Settings
from stream.ingest.counts import IngestLedger
from stream.join.entries import Entry, LabelledPair, PerfWindow
from stream.join.horizon import LabelHorizon
from stream.join.store import MARK_PREFIX, JoinStore
from stream.metrics.segments import SegmentRouter, add_by_segment, add_labelled_by_segment
from stream.metrics.window import WindowState
from stream.windows.eventtime import ModelClock
from stream.windows.frames import WindowId, encode_frame
from stream.windows.plan import FOLD_AT, OpenWindow, PendingAck, Plan

Clock = Callable[[], float]  # wall clock, s: caught-up times are compared across workers


class PartitionState:
    """Stage 1 state for one partition of the (co-partitioned) input topics."""

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
        #: Early labels that found their prediction since they were queued for expiry, as
        #: queued: (expiry time, request id).
        self.joined_early: set[tuple[int, bytes]] = set()
        self.counters: Counter[str] = Counter()
        #: Handles waiting for the next checkpoint (see :meth:`commit`).
        self.held: list[Any] = []
        self.last_revision = clock()
        #: The marks of the last progress frame's models, when they last moved, and when
        #: the last frame went (see :meth:`PartitionStage._send_progress`).
        self.marks: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self.marks_moved_at = -math.inf
        self.progress_sent_at = -math.inf
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
        mark the table kept. Read once: Faust hands a partition's messages over only once
        its tables are restored (they are paused until then), and from then on only this
        stage writes the mark (it was read per message, a table read each)."""
        clock = self.clocks.get(model_id)
        if clock is None:
            lateness = self.settings.metrics.model(model_id).allowed_lateness_s
            if lateness is None:
                lateness = self.settings.windows.allowed_lateness_s
            clock = self.clocks[model_id] = ModelClock(lateness * 1000, last_data=self.clock())
            stored = self.joins.table.get(self._mark_key(model_id))
            if stored is not None:
                clock.closed_through = int(stored)
        return clock

    def _newest(self) -> int:
        """Newest prediction time of any model here: the clock of early labels, which do
        not know their prediction's window yet. (A loop: ``max`` over a generator took
        0.8 us against 0.1, and this runs after every message.)"""
        newest = 0
        for clock in self.clocks.values():
            if clock.max_ts > newest:
                newest = clock.max_ts
        return newest

    def _new_state(self, model_id: str) -> WindowState:
        metrics = self.settings.metrics
        return WindowState.for_model(metrics.model(model_id), metrics)

    def _perf_window(self, wid: WindowId) -> PerfWindow:
        perf = self.perf.get(wid)
        if perf is None:
            perf = self.perf[wid] = PerfWindow(SegmentRouter(self.segment_keys, self.local_cap))
        return perf

    def _add_labelled(self, wid: WindowId, pairs: list[LabelledPair]) -> None:
        perf = self._perf_window(wid)
        perf.pending.extend(pairs)
        perf.dirty = True
        if len(perf.pending) >= FOLD_AT:
            self._fold_labelled(wid, perf)

    def _fold_labelled(self, wid: WindowId, perf: PerfWindow) -> None:
        """Add the window's collected labelled pairs to its states, in one batch."""
        add_labelled_by_segment(perf.states, perf.router, perf.pending,
                                lambda: self._new_state(wid.model_id))
        perf.pending = []

    def _fold(self, wid: WindowId, window: OpenWindow) -> None:
        """Add the window's collected events to its states, in one batch."""
        add_by_segment(window.states, window.router, window.pending,
                       lambda: self._new_state(wid.model_id))
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
            self._add_labelled(wid, [e.pair() for e in entries])

    # ------------------------------------------------------------------ labelled sides, expiry
    def _count_late(self, wid: WindowId, first_late: list[WindowId]) -> None:
        """Counted in the window's late_events row (stage 2 creates the window's rows if it
        never had an on-time event): nothing consumed goes uncounted."""
        self.counters["late_predictions"] += 1
        perf = self._perf_window(wid)
        if perf.late == 0:  # logged once per window: the first late one says why
            first_late.append(wid)
        perf.late += 1
        perf.dirty = True

    def _changed(self, windows: Iterable[WindowId]) -> None:
        """Ingest counts changed: the windows' perf frames carry them (sent when due)."""
        for wid in windows:
            self._perf_window(wid).dirty = True

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

    def _expire(self) -> None:
        """Drop entries past the label horizon (or early labels past their TTL); the
        labelled sides of windows past it are forgotten before a progress frame
        (:meth:`_forget`).

        The clock is each model's horizon clock (:mod:`stream.join.horizon`; for early labels,
        the newest prediction time of any model): label times say when an outcome was
        observed (often long after), and would expire labels whose predictions are merely
        still in flight."""
        self.horizon.advance(self.clocks)
        size, horizon = self.size_ms, self.horizon_ms
        for model_id, clock in self.clocks.items():
            if not clock.expiry_times or clock.expiry_times[0] >= clock.horizon_ts:
                continue  # nothing due (the usual case: this runs after every message)
            for at, request_ids in clock.due():  # whole windows: their packs go unread
                windows = [w for w in self.joins.windows()
                           if w.model_id == model_id and w.end(size) + horizon == at]
                self.counters["expired_unlabelled"] += self.joins.expire_window(
                    windows, request_ids)
        newest = self._newest()
        if self.early_expiry and self.early_expiry[0][0] < newest:
            self._expire_early(newest)

    def _expire_early(self, newest: int) -> None:
        """Drop the early labels whose TTL ``newest`` (the newest prediction time) passed."""
        due: list[tuple[int, bytes]] = []
        while self.early_expiry and self.early_expiry[0][0] < newest:
            item = heapq.heappop(self.early_expiry)
            if item in self.joined_early:  # it found its prediction: nothing to read
                self.joined_early.discard(item)
            else:
                due.append(item)
        early = self.joins.expire_early(due, self.early_ttl_ms)
        self.counters["expired_early_labels"] += early
        self.early_pending -= early

    def _forget(self, plan: Plan) -> None:
        """Forget the labelled sides of windows past the label horizon (their last labels
        sent first): with the default settings a partition holds ~2,000 of them."""
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

