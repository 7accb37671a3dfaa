"""Stage 1, one per input partition: join, open windows, watermark, close, revisions.

Where the heavy per-event work happens (next to the events). Pure logic: the Faust agent
(:mod:`stream.app`) feeds it decoded batches and ticks, sends the frames it plans, then calls
:meth:`PartitionStage.commit`, which persists progress and returns the messages to ack.

No loss, no double count, without Kafka transactions:

- a prediction message is acked only once every window it fed is closed, its partial sent
  (delivery awaited) and the new ``closed_through`` written to the progress table. Until then
  its offset is not committed, so after a crash it is read again and the open window is
  rebuilt from exactly the same events; events of windows already closed are skipped;
- the join table says, per request, the position of the event that wrote it: a replay is
  recognised and processed again, a duplicate (another position) is ignored;
- the labelled side of every window is rebuilt from the join table after a restart (see
  :mod:`stream.join`), and re-sent: stage 2 replaces a source's labelled side, so a re-send
  changes nothing.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from stream.config import Settings
from stream.join import Entry, PerfWindow, position, prediction_fields
from stream.metrics.segments import SegmentRouter
from stream.metrics.window import WindowState
from stream.windows import WindowId, encode_frame, window_start

Clock = Callable[[], float]
log = logging.getLogger(__name__)


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


@dataclass(slots=True)
class Plan:
    """What the agent must do, in order: send ``frames`` (awaiting delivery), send
    ``broadcast`` to every partials partition, then :meth:`PartitionStage.commit`."""

    frames: list[tuple[bytes, bytes]] = field(default_factory=list)
    broadcast: list[bytes] = field(default_factory=list)
    closed_through: int | None = None
    acks: list[Any] = field(default_factory=list)


class PartitionStage:
    """Stage 1 state and logic for one partition of the (co-partitioned) input topics."""

    def __init__(
        self,
        partition: int,
        settings: Settings,
        joins: MutableMapping[bytes, bytes],
        progress: MutableMapping[bytes, int],
        clock: Clock = time.monotonic,
    ) -> None:
        self.partition = partition
        self.settings = settings
        self.joins = joins
        self.progress = progress
        self.clock = clock
        win = settings.windows
        self.size_ms = win.size_s * 1000
        self.lateness_ms = win.allowed_lateness_s * 1000
        self.horizon_ms = win.label_horizon_s * 1000
        self.early_ttl_ms = win.early_label_ttl_s * 1000
        self.segment_keys = tuple(settings.metrics.segments)
        self.local_cap = 4 * settings.metrics.segment_cap
        self.closed_through = int(progress.get(self._progress_key, 0))
        self.max_ts = 0
        self.open: dict[WindowId, OpenWindow] = {}
        self.perf: dict[WindowId, PerfWindow] = {}
        self.perf_waiting: dict[WindowId, list[PendingAck]] = {}
        self.expiry: list[tuple[int, bytes]] = []
        self.early_pending = 0  # labels in the table still waiting for their prediction
        self.counters: Counter[str] = Counter()
        self.last_data = clock()
        self.last_revision = clock()
        self.idle = False
        self._rebuild_from_table()

    # ------------------------------------------------------------------ helpers
    @property
    def _progress_key(self) -> bytes:
        return f"closed-through:{self.partition}".encode()

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
        pairs = [e.pair() for e in entries]
        for seg, group in _group_pairs(perf.router, pairs).items():
            state = perf.states.get(seg)
            if state is None:
                state = perf.states[seg] = self._new_state(wid.model_id)
            state.add_labelled(group)
        perf.dirty = True

    def _expire_later(self, entry: Entry, request_id: bytes) -> None:
        at = entry.expires_at(self.size_ms, self.horizon_ms, self.early_ttl_ms)
        heapq.heappush(self.expiry, (at, request_id))

    def _rebuild_from_table(self) -> None:
        """After (re)assignment: the labelled side and expiry queue from the join table."""
        labelled: dict[WindowId, list[Entry]] = {}
        for request_id, raw in list(self.joins.items()):
            entry = Entry.decode(raw)
            if entry.partition != self.partition:
                continue
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
        # Read again each time: cheap, and right even if the table was still being
        # restored when this stage was created.
        self.closed_through = max(self.closed_through,
                                  int(self.progress.get(self._progress_key, 0)))
        self.last_data = self.clock()
        resumed, self.idle = self.idle, False
        by_window: dict[WindowId, list[dict[str, Any]]] = {}
        labelled: dict[WindowId, list[Entry]] = {}
        first_late: list[int] = []
        for index, event in enumerate(events):
            pos = position(offset, index)
            request_id = event["request_id"].encode()
            ts = int(event["timestamp"])
            wid = WindowId(window_start(ts, self.size_ms), event["model_id"],
                           event["model_version"])
            raw = self.joins.get(request_id)
            entry = Entry.decode(raw) if raw is not None else None
            closed = wid.end(self.size_ms) <= self.closed_through
            if raw is not None and entry is not None and entry.pos is not None:
                if entry.pos != pos:
                    self.counters["duplicate_predictions"] += 1
                    continue
                # A replay after a restart. Write the entry again: with an on-disk table
                # store, the local copy may hold a write whose changelog message the crash
                # lost, and the next owner of this partition would not see it.
                self.joins[request_id] = raw
                if not closed:  # rebuild the open window
                    by_window.setdefault(wid, []).append(event)
                    self.max_ts = max(self.max_ts, ts)
                continue
            outcome, segments = prediction_fields(event, self.segment_keys)
            new = Entry(self.partition, event["request_id"], pos, wid, ts, outcome, segments,
                        late=closed)
            if entry is not None:  # the label came first
                new.label, new.lpos, new.lts = entry.label, entry.lpos, entry.lts
                self.early_pending -= 1
                labelled.setdefault(wid, []).append(new)
                self.counters["joined_early_labels"] += 1
            self.joins[request_id] = new.encode()
            self._expire_later(new, request_id)
            self.max_ts = max(self.max_ts, ts)
            if closed:
                self.counters["late_predictions"] += 1
                perf = self._perf_window(wid)
                if perf.late == 0:  # logged once per window: the first late one says why
                    first_late.append(wid.window_start)
                perf.late += 1
                perf.dirty = True
            else:
                by_window.setdefault(wid, []).append(event)
        if first_late:
            log.info("partition %d: first late predictions of windows %s at offset %d "
                     "(closed through %d)", self.partition, first_late, offset,
                     self.closed_through)
        for wid, entries in labelled.items():
            self._add_labelled(wid, entries)
        pending = PendingAck(handle, len(by_window))
        for wid, batch in by_window.items():
            window = self.open.get(wid)
            if window is None:
                window = self.open[wid] = OpenWindow(
                    SegmentRouter(self.segment_keys, self.local_cap))
            for seg, group in window.router.group(batch).items():
                state = window.states.get(seg)
                if state is None:
                    state = window.states[seg] = self._new_state(wid.model_id)
                state.add_predictions(group)
            window.events += len(batch)
            window.waiting.append(pending)
        plan = self.advance(heartbeat=resumed)  # say at once that this partition is back
        if not by_window:
            plan.acks.append(handle)
        return plan

    def on_labels(self, events: list[dict[str, Any]], offset: int, handle: Any) -> Plan:
        """A batch of valid labels; ``handle`` is acked once the labelled side of every
        window it changed has been sent (so a rebalance or crash before that replays it)."""
        labelled: dict[WindowId, list[Entry]] = {}
        for index, event in enumerate(events):
            lpos = position(offset, index)
            request_id = event["request_id"].encode()
            lts = int(event["timestamp"])
            raw = self.joins.get(request_id)
            entry = (Entry.decode(raw) if raw is not None
                     else Entry(self.partition, event["request_id"]))
            if entry.has_label:
                if entry.lpos != lpos:
                    self.counters["duplicate_labels"] += 1
                elif raw is not None:  # a replay: in the labelled side already; written
                    self.joins[request_id] = raw  # again for the changelog (as above)
                continue
            entry.label, entry.lpos, entry.lts = event["label"], lpos, lts
            self.joins[request_id] = entry.encode()
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

    def tick(self, backlog: bool = False) -> Plan:
        """Called on every tick message: idle detection, revisions, expiry, heartbeat.

        ``backlog``: unread prediction messages wait on this partition, so it is behind,
        not quiet, however long since its last event: it must not be declared idle."""
        if backlog:
            self.last_data = self.clock()
        return self.advance(heartbeat=True, may_idle=True)

    def idle_due(self) -> bool:
        """Whether a tick without backlog would now declare this partition idle (the agent
        then asks the broker first whether it really has nothing unread)."""
        quiet = self.clock() - self.last_data >= self.settings.windows.idle_partition_timeout_s
        return quiet and (bool(self.open) or not self.idle)

    # ------------------------------------------------------------------ closing
    def advance(self, heartbeat: bool = False, may_idle: bool = False) -> Plan:
        """Close what the watermark (or idleness) allows; plan revisions and expiry.

        Only a tick (``may_idle``) may declare the partition idle: it alone knows whether
        prediction messages still wait unread. A label arriving while the predictions are
        held up (a slow fetch, a hole being read from the broker) must not close their
        window: what came after would be counted late."""
        plan = Plan()
        now = self.clock()
        watermark = self.max_ts - self.lateness_ms
        limit = window_start(max(watermark, 0), self.size_ms)
        if may_idle and self.idle_due():
            # Quiet partition: close all it has; later events for these windows are late.
            seen = window_start(self.max_ts, self.size_ms) + self.size_ms if self.max_ts else 0
            limit = max([limit, seen] + [w.end(self.size_ms) for w in self.open])
            self.idle = True
            if self.open:
                log.info("partition %d: no prediction for %.1f s, idle: closing %d windows "
                         "(%d events) through %d", self.partition, now - self.last_data,
                         len(self.open), sum(w.events for w in self.open.values()), limit)
        closing = sorted(w for w in self.open if w.end(self.size_ms) <= limit)
        for wid in closing:
            self._close(wid, plan)
        if limit > self.closed_through:
            self.closed_through = limit
            plan.closed_through = limit
        if now - self.last_revision >= self.settings.windows.revision_interval_s:
            self.last_revision = now
            for wid, perf in sorted(self.perf.items()):
                if perf.dirty and wid not in self.open:
                    plan.frames.append(self._perf_frame(wid, perf, plan))
        self._expire()
        if heartbeat or closing or plan.closed_through is not None:
            plan.broadcast.append(encode_frame(
                "progress", self.partition, {"ct": self.closed_through, "idle": self.idle}, {}))
        return plan

    def _close(self, wid: WindowId, plan: Plan) -> None:
        window = self.open.pop(wid)
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
        for pending in self.perf_waiting.pop(wid, []):
            pending.remaining -= 1
            if pending.remaining == 0:
                plan.acks.append(pending.handle)
        header = {"wid": wid.as_list(), "lab": perf.labelled, "late": perf.late}
        return wid.key(), encode_frame("perf", self.partition, header, perf.states)

    def _expire(self) -> None:
        """Drop entries past the label horizon (or early labels past their TTL)."""
        # The clock is the predictions' event time, for early labels too: label times say when
        # an outcome was observed (often long after), and would expire labels whose
        # predictions are merely still in flight.
        while self.expiry:
            at, request_id = self.expiry[0]
            if at >= self.max_ts:
                break
            heapq.heappop(self.expiry)
            raw = self.joins.get(request_id)
            if raw is None:
                continue
            entry = Entry.decode(raw)
            if entry.expires_at(self.size_ms, self.horizon_ms, self.early_ttl_ms) != at:
                continue  # updated since (an early label that found its prediction)
            del self.joins[request_id]
            if entry.window is None:
                self.counters["expired_early_labels"] += 1
                self.early_pending -= 1
            elif not entry.has_label:
                self.counters["expired_unlabelled"] += 1
        horizon_clock = self.max_ts - self.horizon_ms
        for wid in [w for w in self.perf if w.end(self.size_ms) < horizon_clock]:
            if wid not in self.open:
                del self.perf[wid]

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
        """After the plan's frames were delivered: persist progress, return handles to ack."""
        if plan.closed_through is not None:
            self.progress[self._progress_key] = plan.closed_through
        return plan.acks

    # ------------------------------------------------------------------ introspection
    def stats(self) -> dict[str, Any]:
        return {
            "open_windows": len(self.open),
            "open_events": sum(w.events for w in self.open.values()),
            "perf_windows": len(self.perf),
            "join_entries_tracked": len(self.expiry),
            "early_labels_waiting": self.early_pending,
            "closed_through": self.closed_through,
            "max_event_time": self.max_ts,
            "idle": self.idle,
            **self.counters,
        }


def _group_pairs(
    router: SegmentRouter, pairs: list[tuple[dict[str, Any], Any]]
) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for pair in pairs:
        for seg in router.route(pair[0]):
            out.setdefault(seg, []).append(pair)
    return out
