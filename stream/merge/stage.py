"""Stage 2, per window: merge the partials of all source partitions, evaluate, revise.

A window is finalised when every source partition holding its model has sent its partial
of the window or reported (``progress`` frames) that it closed the model's windows up to the
window's end, and every other source is caught up past that moment (see
:meth:`MergeStage._ready` and ``docs/event-time.md``); another model's progress never counts.
Its prediction-side partials are merged in source order (so the result does not depend on
arrival order), joined with the labelled side of every source (kept in the ``perf``
table), capped to the configured segments, and evaluated by the metrics engine. Later
``perf`` frames (late labels, late events) revise the performance rows, once per window
however many sources sent one (:meth:`MergeStage.revise_pending`); the revision number is
``labelled + late`` events of the window, which only grows, so a later revision always
replaces an earlier one in the store and a replayed one (same number, same values) changes
nothing.

Prediction-side partials stay in memory and their messages unacked until the window is
finalised, so a crash replays them; the ``finals`` table records what was finalised (and with
how many events per source), so a replayed partial of a finalised window is recognised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

from stream.config import Settings
from stream.ingest.counts import ingest_rows, sum_counts
from stream.metrics.estimate import RECONCILIATION_SUFFIXES, revision_estimate_rows
from stream.metrics.evaluate import evaluate_window
from stream.metrics.fairness import fairness_rows
from stream.metrics.performance import performance_metrics
from stream.metrics.reference import ReferenceProfile
from stream.metrics.segments import OTHER_VALUE, cap_segments, segment_name, split_segment
from stream.metrics.window import WindowState
from stream.results import ALL_SEGMENT, DriftRow, MetricRow, WindowKey, WindowResults
from stream.windows.frames import Frame, WindowId, decode_frame

#: Messages of a partition stage 2 reads at most between two
#: :meth:`MergeStage.revise_pending` calls while its stream stays busy (the revised frames'
#: acks wait for it).
REVISE_AFTER = 64

REVISED_FAMILIES = frozenset({"performance"})
REVISED_METRICS = frozenset({"late_events", "equal_opportunity_difference"})


def settle(rows: Iterable[MetricRow], revision: int) -> list[MetricRow]:
    """Rows that labels or late events revise get ``revision``; every other row is computed
    once at close, so it gets revision 0 and no labelled count or coverage: those would only
    say when the labels happened to arrive, and the result must not depend on timing."""
    out = []
    for row in rows:
        if (row.family in REVISED_FAMILIES or row.metric in REVISED_METRICS
                or (row.family == "estimate" and row.metric.endswith(RECONCILIATION_SUFFIXES))):
            out.append(row.revised(revision, row.labelled_count, row.coverage))
        else:
            out.append(row.revised(0, 0, None))
    return out


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """A source partition's latest ``progress`` frame: per model it holds, how far it has
    closed that model's windows; and its caught-up time (wall clock, s; see
    :class:`stream.windows.eventtime.CatchUp`)."""

    closed: dict[str, int]
    caught_up: float | None
    #: Per model, its label-horizon clock there (``closed`` in frames that lack it).
    horizon: dict[str, int]


class References(Protocol):
    """Where stage 2 finds a model's reference profile (None: no drift rows yet)."""

    def get(self, model_id: str, model_version: str) -> ReferenceProfile | None: ...


@dataclass(slots=True)
class MergePlan:
    """Send ``results`` (awaiting delivery), then :meth:`MergeStage.commit`, then ack."""

    results: list[WindowResults] = field(default_factory=list)
    finals: dict[bytes, bytes] = field(default_factory=dict)
    deletes: list[bytes] = field(default_factory=list)
    references: list[tuple[str, ReferenceProfile]] = field(default_factory=list)
    acks: list[Any] = field(default_factory=list)


def window_key(wid: WindowId, segment: str, size_ms: int) -> WindowKey:
    return WindowKey(wid.model_id, wid.model_version, segment, wid.window_start,
                     wid.end(size_ms))


def late_events_row(wid: WindowId, size_ms: int, late: int, predicted: int, labelled: int,
                    revision: int, now: int) -> MetricRow:
    """The window's late-event count, a revised row like performance."""
    return MetricRow(wid.model_id, wid.model_version, ALL_SEGMENT, wid.window_start,
                     wid.end(size_ms), "service", "late_events", "", float(late), predicted,
                     labelled, labelled / predicted if predicted else None, revision, now)


def evaluate_closed_window(
    wid: WindowId, capped: dict[str, WindowState], late: int, settings: Settings,
    reference: ReferenceProfile | None, now: int,
) -> WindowResults:
    """Every row of a finalised window from its merged, capped per-segment states.

    Shared by stage 2 and :func:`stream.merge.offline.offline_results`, so that the stream and
    the offline computation differ only in how the states were built.
    """
    size_ms = settings.windows.size_s * 1000
    model = settings.metrics.model(wid.model_id)
    everything = capped.get(ALL_SEGMENT)
    labelled = everything.n_labelled if everything is not None else 0
    predicted = everything.n_predictions if everything is not None else 0
    revision = labelled + late
    drift: list[DriftRow] = []
    metrics: list[MetricRow] = []
    for seg, state in capped.items():
        if not settings.metrics.reported(seg):
            continue  # a protected attribute's groups, routed for fairness only
        key = window_key(wid, seg, size_ms)
        result = evaluate_window(state, reference, settings.metrics, model, key, 0, now)
        drift.extend(result.drift)
        metrics.extend(result.metrics)
    metrics.append(late_events_row(wid, size_ms, late, predicted, labelled, revision, now))
    if model.protected_attribute:
        metrics.extend(fairness_rows(capped, model.protected_attribute,
                                     window_key(wid, ALL_SEGMENT, size_ms), revision, now,
                                     min_group_size=model.min_group_size))
    return WindowResults(tuple(drift), tuple(settle(metrics, revision)))


def _merge_all(states: list[WindowState]) -> WindowState:
    out = states[0]
    for state in states[1:]:
        out = out.merge(state)
    return out


def _merge_by_segment(groups: list[dict[str, WindowState]]) -> dict[str, WindowState]:
    collected: dict[str, list[WindowState]] = {}
    for group in groups:
        for seg, state in group.items():
            collected.setdefault(seg, []).append(state)
    return {seg: _merge_all(states) for seg, states in sorted(collected.items())}


class MergeStage:
    """Stage 2 state and logic for one partition of the partials topic."""

    def __init__(
        self,
        partition: int,
        settings: Settings,
        sources: int,
        perf_table: MutableMapping[bytes, bytes],
        finals: MutableMapping[bytes, bytes],
        references: References,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.partition = partition
        self.settings = settings
        self.sources = sources
        self.perf_table = perf_table
        self.finals = finals
        self.references = references
        self.clock_ms = clock_ms
        self.clock = clock
        #: Windows every source holding their model has closed, waiting for the others to
        #: be caught up past this moment (wall clock, s).
        self.waiting_since: dict[WindowId, float] = {}
        self.size_ms = settings.windows.size_s * 1000
        self.horizon_ms = settings.windows.label_horizon_s * 1000
        self.partials: dict[WindowId, dict[int, Frame]] = {}
        self.waiting: dict[WindowId, list[Any]] = {}
        self.progress: dict[int, SourceProgress] = {}
        #: Per model, the lowest horizon clock of the sources holding it (never goes
        #: back): finalised windows are forgotten once it passes their end + the horizon.
        self.model_clock: dict[str, int] = {}
        self.finalised = 0
        self.revisions = 0
        self._expired_at: dict[str, int] = {}
        #: Finalised windows a perf frame changed, with the frames' handles, until
        #: :meth:`revise_pending` revises each once.
        self.to_revise: dict[WindowId, list[Any]] = {}

    # ------------------------------------------------------------------ frames
    def on_frame(self, value: bytes, handle: Any) -> MergePlan:
        frame = decode_frame(value)
        plan = MergePlan()
        if frame.kind == "progress":
            cu = frame.header.get("cu")
            closed = {str(m): int(ct) for m, ct in frame.header["ct"].items()}
            horizon = {str(m): int(h) for m, h in frame.header.get("hz", closed).items()}
            self.progress[frame.source] = SourceProgress(
                closed, float(cu) if cu is not None else None, horizon)
            plan.acks.append(handle)
            self._advance_model_clocks()
            self._finalise_ready(plan)
            self._expire(plan)
            return plan
        wid = frame.window
        final = self._final(wid)
        if frame.kind == "perf":
            self.perf_table[self._perf_key(wid, frame.source)] = value
            if final is not None:  # revised by revise_pending, acked with that revision
                self.to_revise.setdefault(wid, []).append(handle)
                return plan
            if wid.end(self.size_ms) + self.horizon_ms < self.model_clock.get(wid.model_id, 0):
                plan.acks.append(handle)  # past the label horizon: forgotten, not reopened
                return plan
            # Not finalised yet; perhaps a window that had only late events (no source sent
            # a partial): it is finalised like the others, so its late_events row exists.
            # Acked with the window, so a crash before that replays this frame.
            self.partials.setdefault(wid, {})
            self.waiting.setdefault(wid, []).append(handle)
            self._finalise_ready(plan)
            return plan
        # A prediction-side partial.
        if final is None:
            # A source re-sends a window only after a restart, rebuilt from the messages it
            # read again: the same events, or (if its progress record was lost) a subset.
            # Keep the larger; the first one's messages stay unacked until finalisation.
            kept = self.partials.setdefault(wid, {}).get(frame.source)
            if kept is None or int(frame.header["n"]) >= int(kept.header["n"]):
                self.partials[wid][frame.source] = frame
            self.waiting.setdefault(wid, []).append(handle)
            self._finalise_ready(plan)
            return plan
        plan.acks.append(handle)
        known = int(final["sources"].get(str(frame.source), 0))
        extra = int(frame.header["n"]) - known
        if extra > 0:  # a source that was idle sent events after the window was finalised
            final["late_extra"][str(frame.source)] = extra
            final["sources"][str(frame.source)] = int(frame.header["n"])
            plan.finals[wid.key()] = orjson.dumps(final)
            self._revise(wid, final, plan)
        return plan

    def revise_pending(self) -> MergePlan:
        """One revision of each finalised window perf frames changed since the last call.

        Every source sends a window's labelled side on its own revision tick, and a revision
        reads every source's latest one: revised per frame, a window of P partitions was
        revised up to P times in a row, each time reading all P frames (two thirds of stage
        2's CPU in ``load_tests/bench_stage.py --stage2``). The agent calls this after a
        message of this partition when its stream has nothing more handed over, or every
        :data:`REVISE_AFTER` messages of it (each source sends a progress frame at least
        every ``windows.quiet_progress_s``); a crash before the revision is delivered
        replays the unacked frames."""
        plan = MergePlan()
        for wid in sorted(self.to_revise):
            self._revise_waiting(wid, self._final(wid), plan)
        return plan

    def _revise_waiting(self, wid: WindowId, final: dict[str, Any] | None,
                        plan: MergePlan) -> None:
        """Revise a window perf frames changed (unless forgotten past the label horizon
        meanwhile: ``final`` None); its frames are acked with the revision."""
        plan.acks.extend(self.to_revise.pop(wid))
        if final is not None:
            self._revise(wid, final, plan)

    def commit(self, plan: MergePlan) -> list[Any]:
        """After the results were delivered: record finalised windows; return acks."""
        for key, value in plan.finals.items():
            self.finals[key] = value
        for key in plan.deletes:
            self.finals.pop(key, None)
        return plan.acks

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _perf_key(wid: WindowId, source: int) -> bytes:
        return wid.key() + f"|{source}".encode()

    def _final(self, wid: WindowId) -> dict[str, Any] | None:
        raw = self.finals.get(wid.key())
        return orjson.loads(raw) if raw is not None else None

    def _ready(self, wid: WindowId) -> bool:
        """Whether every source is done with the window, by its model's clock there.

        A source that holds the model (it has the model's clock running) is done when it
        has closed the window. A source that holds nothing of the model (never saw it, or
        the model went idle there) is done once it has been caught up past the moment
        every holding source was done: then all it had to read from before that moment is
        read, and nothing of the model was in it. Another model's progress never counts.
        A source that later sends events of the window revises it (``late_extra``).

        A source whose partial of the window is here has closed it (a source sends it when
        it closes the window), whatever its latest progress frame says: a close sends no
        progress frame, the next tick does."""
        end = wid.end(self.size_ms)
        relied: list[SourceProgress] = []
        sent = self.partials.get(wid, {})
        for source in range(self.sources):
            if source in sent:
                continue
            progress = self.progress.get(source)
            if progress is None:
                return False  # not heard from since this stage started
            closed_through = progress.closed.get(wid.model_id)
            if closed_through is None:
                relied.append(progress)
            elif closed_through < end:
                self.waiting_since.pop(wid, None)
                return False
        if not relied:
            return True
        since = self.waiting_since.setdefault(wid, self.clock())
        return all(p.caught_up is not None and p.caught_up > since for p in relied)

    def _perf_frames(self, wid: WindowId) -> list[Frame]:
        frames = []
        for source in range(self.sources):
            raw = self.perf_table.get(self._perf_key(wid, source))
            if raw is not None:
                frames.append(decode_frame(raw))
        return frames

    def _finalise_ready(self, plan: MergePlan) -> None:
        for wid in sorted(self.partials):
            if self._ready(wid):
                self._finalise(wid, plan)

    # ------------------------------------------------------------------ evaluation
    def _finalise(self, wid: WindowId, plan: MergePlan) -> None:
        partials = self.partials.pop(wid)
        self.waiting_since.pop(wid, None)
        plan.acks.extend(self.waiting.pop(wid, []))
        if not partials:  # only late events (and their labels): no prediction side
            final: dict[str, Any] = {"segments": {}, "sources": {}, "late_extra": {},
                                     "q": self.partition}
            plan.finals[wid.key()] = orjson.dumps(final)
            self.finalised += 1
            self._revise(wid, final, plan)
            return
        ordered = [partials[source] for source in sorted(partials)]
        predicted = _merge_by_segment([frame.states for frame in ordered])
        perf_frames = self._perf_frames(wid)
        labelled_side = _merge_by_segment([frame.states for frame in perf_frames])
        combined = {
            seg: predicted[seg].merge(labelled_side[seg]) if seg in labelled_side else state
            for seg, state in predicted.items()
        }
        for seg, state in labelled_side.items():
            combined.setdefault(seg, state)
        capped = cap_segments(combined, self.settings.metrics.segment_cap)
        late = sum(int(f.header["late"]) for f in perf_frames)
        model = self.settings.metrics.model(wid.model_id)
        reference = self.references.get(wid.model_id, wid.model_version)
        result = evaluate_closed_window(wid, capped, late, self.settings, reference,
                                        self.clock_ms())
        everything = capped.get(ALL_SEGMENT)
        predicted_all = everything.n_predictions if everything is not None else 0
        plan.results.append(replace(result, metrics=result.metrics + tuple(ingest_rows(
            wid, self.size_ms, predicted_all + late, late,
            everything.n_labelled if everything is not None else 0,
            sum_counts(f.header for f in perf_frames), self.clock_ms()))))
        if model.reference_window_start == wid.window_start and ALL_SEGMENT in capped:
            plan.references.append((wid.model_id, ReferenceProfile.from_window(capped)))
        final = {
            "segments": {seg: state.n_predictions for seg, state in capped.items()},
            "sources": {str(s): int(f.header["n"]) for s, f in partials.items()},
            "late_extra": {},
            "q": self.partition,
        }
        plan.finals[wid.key()] = orjson.dumps(final)
        self.finalised += 1

    def _revise(self, wid: WindowId, final: dict[str, Any], plan: MergePlan) -> None:
        """New performance rows for a finalised window from the latest labelled sides."""
        kept: dict[str, int] = final["segments"]
        perf_frames = self._perf_frames(wid)
        folded: list[dict[str, WindowState]] = []
        for frame in perf_frames:
            group: dict[str, WindowState] = {}
            for seg, state in frame.states.items():
                target = seg
                if seg not in kept and (parts := split_segment(seg)) is not None:
                    target = segment_name(parts[0], OTHER_VALUE)
                group[target] = group[target].merge(state) if target in group else state
            folded.append(group)
        merged = _merge_by_segment(folded)
        for seg, state in merged.items():  # as finalised: coverage is over all predictions
            state.n_predictions = int(kept.get(seg, 0))
        late = sum(int(f.header["late"]) for f in perf_frames)
        late += sum(int(v) for v in final["late_extra"].values())
        labelled_all = merged[ALL_SEGMENT].n_labelled if ALL_SEGMENT in merged else 0
        revision = labelled_all + late
        now = self.clock_ms()
        rows: list[MetricRow] = []
        reference = self.references.get(wid.model_id, wid.model_version)
        for seg, state in merged.items():
            if not self.settings.metrics.reported(seg):
                continue  # routed for fairness only (see evaluate_closed_window)
            n = int(kept.get(seg, 0))
            coverage = state.n_labelled / n if n else None
            realised = performance_metrics(state)
            for metric, value in realised.items():
                rows.append(MetricRow(wid.model_id, wid.model_version, seg, wid.window_start,
                                      wid.end(self.size_ms), "performance", metric, "", value,
                                      state.n_labelled, state.n_labelled, coverage, revision,
                                      now))
            for metric, value, size in revision_estimate_rows(state, reference, realised,
                                                              self.settings.metrics):
                rows.append(MetricRow(wid.model_id, wid.model_version, seg, wid.window_start,
                                      wid.end(self.size_ms), "estimate", metric, "", value,
                                      size, state.n_labelled, coverage, revision, now))
        rows.append(late_events_row(wid, self.size_ms, late, int(kept.get(ALL_SEGMENT, 0)),
                                    labelled_all, revision, now))
        rows.extend(ingest_rows(wid, self.size_ms, int(kept.get(ALL_SEGMENT, 0)) + late, late,
                                labelled_all, sum_counts(f.header for f in perf_frames), now))
        model = self.settings.metrics.model(wid.model_id)
        if model.protected_attribute:
            key = window_key(wid, ALL_SEGMENT, self.size_ms)
            rows.extend(row for row in fairness_rows(merged, model.protected_attribute, key,
                                                     revision, now,
                                                     min_group_size=model.min_group_size)
                        if row.metric == "equal_opportunity_difference")
        plan.results.append(WindowResults((), tuple(rows)))
        self.revisions += 1

    def _advance_model_clocks(self) -> None:
        """Each model's horizon clock: the lowest among the sources holding it (sources
        without it hold back nothing), and never backwards. A source's clock waits for its
        labels to be read (:mod:`stream.join.horizon`), so a
        window's labelled side is not forgotten here while labels for it may still come."""
        lowest: dict[str, int] = {}
        for progress in self.progress.values():
            for model_id in progress.closed:
                at = progress.horizon.get(model_id, progress.closed[model_id])
                lowest[model_id] = min(lowest.get(model_id, at), at)
        for model_id, clock in lowest.items():
            if clock > self.model_clock.get(model_id, 0):
                self.model_clock[model_id] = clock

    def _expire(self, plan: MergePlan) -> None:
        """Forget finalised windows whose label horizon has passed on their model's clock."""
        if len(self.progress) < self.sources:
            return
        due = {m: c for m, c in self.model_clock.items()
               if c - self._expired_at.get(m, 0) >= self.size_ms}
        if not due:
            return  # at most one scan per window length of a model's progress
        self._expired_at.update(due)
        for key, raw in list(self.finals.items()):
            if key in plan.finals or orjson.loads(raw).get("q") != self.partition:
                continue  # the table holds other partitions' windows too
            wid = WindowId.from_list(orjson.loads(key))
            clock = due.get(wid.model_id)
            if clock is not None and wid.end(self.size_ms) + self.horizon_ms < clock:
                if wid in self.to_revise:  # its last labels, before it is forgotten
                    self._revise_waiting(wid, orjson.loads(raw), plan)
                plan.deletes.append(key)
                for source in range(self.sources):
                    self.perf_table.pop(self._perf_key(wid, source), None)

    def stats(self) -> dict[str, Any]:
        return {"pending_windows": len(self.partials), "finalised": self.finalised,
                "revisions": self.revisions,
                "progress": {s: {"closed_through": p.closed, "caught_up": p.caught_up}
                             for s, p in sorted(self.progress.items())}}
