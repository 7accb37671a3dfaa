"""Stage 1 + stage 2 driven in memory, as the Faust agents drive them, against offline results.

Kafka is replaced here only by its semantics (ordered partitions, offsets, acks, replay from
the last committed offset); the same stages run on the real broker in
``tests/integration/test_topology_e2e.py``.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import pytest

from stream.config import Settings, load_settings
from stream.events import EventKind, decode_message
from stream.join.horizon import ALL_READ
from stream.join.store import pack_key
from stream.merge.offline import offline_results
from stream.merge.references import FileReferences
from stream.merge.stage import MergePlan, MergeStage
from stream.results import WindowResults
from stream.sdk.partitioning import partition_for
from stream.windows.frames import decode_frame
from stream.windows.partition import PartitionStage
from stream.windows.plan import Plan

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000


def make_settings(**metrics: Any) -> Settings:
    return load_settings(
        None,
        topics={"partitions": 4},
        windows={"size_s": 60, "allowed_lateness_s": 5, "idle_partition_timeout_s": 30,
                 "revision_interval_s": 1, "label_horizon_s": 3600, "early_label_ttl_s": 600},
        metrics={"segments": ["country"], "sample_capacity": 40, "min_sample_size": 5,
                 **metrics},
    )


def make_events(n: int, seed: int = 1, span_ms: int = 180_000) -> tuple[list[dict[str, Any]],
                                                                       list[dict[str, Any]]]:
    rng = random.Random(seed)
    predictions, labels = [], []
    for i in range(n):
        ts = T0 + i * span_ms // n
        p = rng.random()
        predictions.append({
            "request_id": f"r{i}", "model_id": "m", "model_version": "v1", "timestamp": ts,
            "features": {"x": rng.gauss(0, 1), "c": rng.choice("abc"), "k": None},
            "prediction": int(p > 0.5), "probability": p,
            "segments": {"country": rng.choice(["DE", "FR", "US"])},
            "latency_ms": rng.random() * 20,
        })
        if rng.random() < 0.7:
            labels.append({"request_id": f"r{i}", "model_id": "m",
                           "timestamp": ts + 1_000, "label": int(rng.random() < p)})
    return predictions, labels


TICK = object()  # the handle of a tick message (ticks are not replayed here)


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    value: Any
    acked: bool = False


@dataclass
class Harness:
    """P input partitions -> stage 1 -> partials partitions -> stage 2 -> results."""

    settings: Settings
    clock: list[float] = field(default_factory=lambda: [0.0])
    joins: dict[bytes, bytes] = field(default_factory=dict)
    perf: dict[bytes, bytes] = field(default_factory=dict)
    finals: dict[bytes, bytes] = field(default_factory=dict)
    results: list[WindowResults] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parts = self.settings.topics.partitions
        self.log: dict[tuple[str, int], list[Msg]] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.refs = FileReferences(self.settings)
        self.start()

    def start(self) -> None:
        """(Re)start: fresh in-memory stages over the persisted tables."""
        self.stage1 = {p: PartitionStage(p, self.settings, self.joins,
                                         clock=lambda: self.clock[0])
                       for p in range(self.parts)}
        self.stage2 = {q: MergeStage(q, self.settings, self.parts, self.perf, self.finals,
                                     self.refs, clock=lambda: self.clock[0])
                       for q in range(self.parts)}
        self.read: dict[tuple[str, int], int] = dict(self.committed)

    def append(self, topic: str, partition: int, value: Any) -> None:
        log = self.log.setdefault((topic, partition), [])
        log.append(Msg(topic, partition, len(log), value))

    def produce(self, kind: str, events: list[dict[str, Any]], batch: int = 7) -> None:
        by_part: dict[int, list[dict[str, Any]]] = {}
        for e in events:
            by_part.setdefault(partition_for(e["request_id"], self.parts), []).append(e)
        for p, evs in by_part.items():
            for i in range(0, len(evs), batch):
                self.append(kind, p, [dict(e) for e in evs[i:i + batch]])

    def _ack(self, msg: Msg) -> None:
        msg.acked = True
        log = self.log[(msg.topic, msg.partition)]
        off = self.committed.get((msg.topic, msg.partition), 0)
        while off < len(log) and log[off].acked:
            off += 1
        self.committed[(msg.topic, msg.partition)] = off

    def _run1(self, p: int, plan: Plan) -> None:
        for key, value in plan.frames:
            self.append("partials", partition_for(key, self.parts), value)
        for frame in plan.broadcast:
            for q in range(self.parts):
                self.append("partials", q, frame)
        for handle in self.stage1[p].commit(plan):
            if handle is not TICK:
                self._ack(handle)

    def _run2(self, q: int, plan: MergePlan) -> None:
        self.results.extend(plan.results)
        for handle in self.stage2[q].commit(plan):
            self._ack(handle)

    def labels_read(self, p: int) -> bool:
        return self.read.get(("labels", p), 0) >= len(self.log.get(("labels", p), []))

    def pump(self, limit: int | None = None, only: str | None = None) -> int:
        """Deliver unread messages (of topic ``only`` if given), round robin over
        partitions; returns how many."""
        done = 0
        progress = True
        while progress and (limit is None or done < limit):
            progress = False
            for (topic, part), log in sorted(self.log.items()):
                if only is not None and topic != only:
                    continue
                pos = self.read.get((topic, part), 0)
                if pos >= len(log):
                    continue
                msg = log[pos]
                self.read[(topic, part)] = pos + 1
                progress = True
                done += 1
                if topic == "partials":
                    self._run2(part, self.stage2[part].on_frame(msg.value, msg))
                    if pos + 1 >= len(log):  # nothing more handed over: as the agent does
                        self._run2(part, self.stage2[part].revise_pending())
                elif isinstance(msg.value, bytes):  # raw, as the agent gets it (stream.app)
                    self._run_raw(part, msg)
                elif topic == "predictions":
                    # as the agent says after each message (stream.runtime.flow)
                    self.stage1[part].horizon.safe_offset = (
                        ALL_READ if self.labels_read(part) else None)
                    self._run1(part, self.stage1[part].on_predictions(msg.value, msg.offset,
                                                                      msg))
                else:
                    self._run1(part, self.stage1[part].on_labels(msg.value, msg.offset, msg))
                if limit is not None and done >= limit:
                    break
        return done

    def _run_raw(self, p: int, msg: Msg) -> None:
        kind: EventKind = "prediction" if msg.topic == "predictions" else "label"
        decoded = decode_message(msg.value, kind, 1 << 20)
        stage = self.stage1[p]
        stage.on_rejected(decoded.rejected, kind, msg.offset)
        if not decoded.valid:  # held for the checkpoint, as the agent does
            self._run1(p, Plan(acks=[msg]))
        elif kind == "prediction":
            self._run1(p, stage.on_predictions(decoded.valid, msg.offset, msg))
        else:
            self._run1(p, stage.on_labels(decoded.valid, msg.offset, msg))

    def caught_up(self, p: int) -> float | None:
        """Now, if every prediction message of partition ``p`` has been read (as the
        agent's broker check would find), else not known."""
        log = self.log.get(("predictions", p), [])
        return self.clock[0] if self.read.get(("predictions", p), 0) >= len(log) else None

    def tick(self, seconds: float) -> None:
        self.clock[0] += seconds
        for p in range(self.parts):
            self.stage1[p].horizon.safe_offset = ALL_READ if self.labels_read(p) else None
            plan = self.stage1[p].tick(self.caught_up(p))
            plan.acks.append(TICK)  # as the agent does: a tick is a message it acks
            self._run1(p, plan)
        self.pump()

    def settle(self) -> None:
        """Go quiet: models go idle on every partition, stage 2 sees them caught up."""
        self.tick(31)
        self.tick(31)
        self.tick(2)

    def crash(self) -> None:
        """Lose all in-memory state; tables keep what was written; replay from commits."""
        self.start()

    def latest(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Rows by identity, latest revision (last written wins within one revision)."""
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        for res in self.results:
            for row in [*res.drift, *res.metrics]:
                doc = asdict(row)
                doc.pop("computed_at")
                ident = _ident(doc)
                if ident not in out or out[ident]["revision"] <= doc["revision"]:
                    out[ident] = doc
        return out


def _ident(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc["model_id"], doc["model_version"], doc["segment"], doc["window_start"],
            doc.get("family", "drift"), doc.get("metric", ""), doc["feature"])


def offline(settings: Settings, predictions: list[dict[str, Any]],
            labels: list[dict[str, Any]], refs: FileReferences) -> dict[tuple[Any, ...], Any]:
    res = offline_results(predictions, labels, settings, refs)
    out = {}
    for row in [*res.drift, *res.metrics]:
        doc = asdict(row)
        doc.pop("computed_at")
        out[_ident(doc)] = doc
    return out


def assert_same(got: dict[tuple[Any, ...], Any], want: dict[tuple[Any, ...], Any]) -> None:
    assert set(got) == set(want), (set(got) ^ set(want))
    for ident, doc in want.items():
        assert got[ident] == pytest.approx(doc, nan_ok=True), ident


def run_all(h: Harness, preds: list[dict[str, Any]], labels: list[dict[str, Any]]) -> None:
    h.produce("labels", labels[: len(labels) // 5])  # early labels
    h.produce("predictions", preds)
    h.produce("labels", labels[len(labels) // 5:])
    h.pump()
    h.settle()  # idle: partitions close what they have; revisions of late labels


@pytest.fixture
def reference_file(tmp_path: Any) -> Any:
    import orjson
    preds, _ = make_events(300, seed=99)
    path = tmp_path / "ref.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in preds))
    return path


@pytest.mark.parametrize("partitions", [1, 4])
def test_stream_equals_offline(partitions: int, reference_file: Any) -> None:
    settings = make_settings(models={"m": {"reference_path": str(reference_file),
                                           "protected_attribute": "country"}})
    settings = settings.model_copy(update={"topics": settings.topics.model_copy(
        update={"partitions": partitions})})
    preds, labels = make_events(400)
    h = Harness(settings)
    run_all(h, preds, labels)
    want = offline(settings, preds, labels, h.refs)
    assert any(k[4] == "drift" for k in want), "the reference must give drift rows"
    assert any(k[4] == "performance" for k in want)
    assert any(k[4] == "fairness" for k in want)
    assert_same(h.latest(), want)
    assert all(m.acked for log in h.log.values() for m in log), "every message acked"


def test_a_segments_drift_is_measured_against_its_own_reference_rows(
        reference_file: Any) -> None:
    """The configured segment keys reach the reference file's profile, and the stream's drift
    rows of a segment name the size of that segment's reference rows (the offline engine's
    equal them: test_stream_equals_offline)."""
    settings = make_settings(models={"m": {"reference_path": str(reference_file)}})
    profile = FileReferences(settings).get("m", "v1")
    assert profile is not None
    assert set(profile.segments) == {"country=DE", "country=FR", "country=US"}
    assert sum(p.rows for p in profile.segments.values()) == profile.rows == 300
    preds, labels = make_events(400)
    h = Harness(settings)
    run_all(h, preds, labels)
    sizes = {(d["segment"], d["feature"]): d["reference_size"] for d in h.latest().values()
             if d.get("family", "drift") == "drift" and "metric" not in d}
    # reference_size: the values the test ran on; a segment's own, a sample of
    # metrics.sample_capacity (40 here) of its ~100 rows
    assert sizes[("all", "x")] == profile.columns["x"].sample.size == 300
    for seg, own in profile.segments.items():
        assert sizes[(seg, "x")] == own.columns["x"].sample.size == 40


def test_results_independent_of_partitioning_and_batching(reference_file: Any) -> None:
    base = make_settings(models={"m": {"reference_path": str(reference_file)}})
    preds, labels = make_events(300, seed=5)
    outputs = []
    for parts, batch in [(1, 1), (3, 50), (4, 7)]:
        settings = base.model_copy(update={"topics": base.topics.model_copy(
            update={"partitions": parts})})
        h = Harness(settings)
        h.produce("predictions", preds, batch=batch)
        h.produce("labels", labels, batch=batch)
        h.pump()
        h.settle()
        outputs.append(h.latest())
    assert_same(outputs[1], outputs[0])
    assert_same(outputs[2], outputs[0])


def test_duplicates_count_once() -> None:
    settings = make_settings()
    preds, labels = make_events(200, seed=3)
    h = Harness(settings)
    h.produce("predictions", preds)
    h.produce("predictions", preds[:50])  # re-sent by a retrying producer
    h.produce("labels", labels)
    h.produce("labels", labels[:30])
    h.pump()
    h.settle()
    # The offline computation counts the repeats too (the ingest rows).
    assert_same(h.latest(), offline(settings, preds + preds[:50], labels + labels[:30],
                                    h.refs))
    assert sum(s.counters["duplicate_predictions"] for s in h.stage1.values()) == 50
    assert sum(s.counters["duplicate_labels"] for s in h.stage1.values()) == 30


def test_a_request_twice_in_one_message_counts_once() -> None:
    """A batch message that repeats a request: the second is a duplicate, as in two
    messages (the join reads a message's requests at once, except in such a message)."""
    settings = make_settings()
    preds, labels = make_events(120, seed=4)
    twice = [e for pred in preds for e in (pred, pred)]  # mostly in the same message
    h = Harness(settings)
    h.produce("predictions", twice)
    h.produce("labels", labels)
    h.pump()
    h.settle()
    assert_same(h.latest(), offline(settings, twice, labels, h.refs))
    assert sum(s.counters["duplicate_predictions"] for s in h.stage1.values()) == 120


@pytest.mark.parametrize("crash_after", [5, 40, 90, 150])
def test_crash_and_replay_neither_loses_nor_double_counts(crash_after: int) -> None:
    settings = make_settings()
    preds, labels = make_events(300, seed=11)
    h = Harness(settings)
    h.produce("labels", labels[:40])
    h.produce("predictions", preds)
    h.produce("labels", labels[40:])
    h.pump(limit=crash_after)
    h.crash()
    h.pump(limit=crash_after // 2 + 1)
    h.crash()  # twice, at another point
    h.pump()
    h.settle()
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))


def test_crash_after_windows_closed_before_finalisation() -> None:
    settings = make_settings()
    preds, labels = make_events(200, seed=12)
    h = Harness(settings)
    h.produce("predictions", preds)
    h.produce("labels", labels)
    h.pump()
    h.clock[0] += 31
    for p in range(h.parts):  # partials sent, stage 2 not run yet
        h._run1(p, h.stage1[p].tick())
    h.crash()
    h.pump()
    h.settle()
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))


def test_late_labels_revise_until_they_converge() -> None:
    settings = make_settings()
    preds, labels = make_events(240, seed=4)
    h = Harness(settings)
    h.produce("predictions", preds)
    h.pump()
    h.tick(31)  # windows close with no label: performance comes later
    first = h.latest()
    assert not any(k[4] == "performance" for k in first)
    revisions = []
    for chunk in range(4):
        part = labels[chunk * len(labels) // 4:(chunk + 1) * len(labels) // 4]
        h.produce("labels", part)
        h.pump()
        h.tick(2)
        acc = [d for k, d in h.latest().items() if k[4] == "performance" and k[5] == "accuracy"
               and k[2] == "all"]
        revisions.append(sorted((d["window_start"], d["revision"], d["labelled_count"])
                                for d in acc))
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))
    for before, after in itertools.pairwise(revisions):
        assert [r for _, r, _ in after] >= [r for _, r, _ in before][: len(after)]
    final_cov = [d["coverage"] for k, d in h.latest().items()
                 if k[4] == "performance" and k[5] == "accuracy" and k[2] == "all"]
    assert all(0.5 < c < 0.9 for c in final_cov), final_cov  # about 70 % get a label


def test_late_labels_from_every_partition_revise_a_window_once() -> None:
    """Each source partition sends a finalised window's labelled side on its revision tick;
    stage 2 revises the window once for the frames it has been handed, not once per frame
    (each revision reads every source's frame), with the same figures as offline."""
    settings = make_settings()
    preds, labels = make_events(400, seed=12)
    h = Harness(settings)
    h.produce("predictions", preds)
    h.pump()
    h.settle()  # the windows are finalised without labels
    windows = len({k[3] for k in h.latest()})
    assert windows >= 3 and sum(m.finalised for m in h.stage2.values()) == windows
    h.produce("labels", labels)
    h.pump()
    frames_before = {q: len(h.log.get(("partials", q), [])) for q in range(h.parts)}
    h.tick(2)  # every partition sends its perf frame of every window, then stage 2 reads
    perf = [decode_frame(m.value) for q in range(h.parts)
            for m in h.log.get(("partials", q), [])[frames_before[q]:]
            if decode_frame(m.value).kind == "perf"]
    assert len(perf) == 4 * windows  # four sources
    assert sum(m.revisions for m in h.stage2.values()) == windows
    assert all(not m.to_revise for m in h.stage2.values())
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))
    assert all(h.committed.get(("partials", q), 0) == len(h.log.get(("partials", q), []))
               for q in range(h.parts))  # every perf frame acked with its revision


def test_old_windows_are_revised_every_slow_interval_young_ones_every_tick() -> None:
    """Labels days late change thousands of windows per revision interval: a window that
    ended more than ``revision_slow_after_s`` before its model's newest prediction sends its
    labelled side once per ``revision_slow_interval_s``, on every partition in the same
    tick (so stage 2 revises it once), consecutive windows in different ticks (the load
    spreads over the interval); a younger one on every revision tick. A label message is
    acked once its window's frame went, and the figures end as offline."""
    settings = make_settings()  # revision_interval_s 1
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(update={
        "revision_slow_after_s": 300, "revision_slow_interval_s": 5})})
    preds, labels = make_events(600, seed=31, span_ms=600_000)  # ten 60 s windows
    start_of = {p["request_id"]: p["timestamp"] - p["timestamp"] % 60_000 for p in preds}
    first, young_start = min(start_of.values()), max(start_of.values())
    second = first + 60_000
    by_window = {w: [lab for lab in labels if start_of[lab["request_id"]] == w]
                 for w in (first, second, young_start)}
    h = Harness(settings)
    h.produce("predictions", preds)
    h.pump()
    h.settle()  # every window finalised, no label yet

    def revised_after(seconds: float) -> set[tuple[int, int]]:
        """(window start, source partition) of the perf frames one tick later sends."""
        before = {q: len(h.log.get(("partials", q), [])) for q in range(h.parts)}
        h.tick(seconds)
        frames = [decode_frame(m.value) for q in range(h.parts)
                  for m in h.log.get(("partials", q), [])[before[q]:]]
        return {(f.window.window_start, f.source) for f in frames if f.kind == "perf"}

    def sources(labels: list[dict[str, Any]]) -> set[int]:
        return {partition_for(lab["request_id"], h.parts) for lab in labels}

    h.produce("labels", by_window[young_start])  # in messages before the old ones'
    h.produce("labels", by_window[first] + by_window[second])
    h.pump()
    ticks, all_acked = [], []
    for _ in range(5):  # one slow interval
        ticks.append(revised_after(1))
        all_acked.append(all(h.committed.get(("labels", p), 0) == len(h.log[("labels", p)])
                             for p in sources(by_window[first] + by_window[second])))
    assert young_start in {s for s, _ in ticks[0]}
    assert all(young_start not in {s for s, _ in t} for t in ticks[1:])
    when = {w: [i for i, t in enumerate(ticks) if any(s == w for s, _ in t)]
            for w in (first, second)}
    assert all(len(at) == 1 for at in when.values()), when  # once per slow interval
    assert when[first] != when[second], when  # spread over it
    for w, [at] in when.items():  # every partition's side of it in the same tick
        assert {src for s, src in ticks[at] if s == w} == sources(by_window[w])
    last = max(at for [at] in when.values())
    assert all_acked == [i >= last for i in range(5)]  # label messages wait for the frames
    h.settle()
    assert_same(h.latest(), offline(settings, preds, [lab for labs in by_window.values()
                                                      for lab in labs], h.refs))


def test_late_events_are_counted_not_lost_and_do_not_reopen() -> None:
    settings = make_settings()
    preds, _ = make_events(120, seed=8, span_ms=120_000)  # windows T0 and T0+60s
    h = Harness(settings)
    h.produce("predictions", preds)
    h.pump()
    # Far-future events push every partition's watermark past both windows.
    future = [dict(preds[0], request_id=f"f{i}", timestamp=T0 + 600_000) for i in range(40)]
    h.produce("predictions", future)
    h.pump()
    late = [dict(preds[0], request_id=f"late{i}", timestamp=T0 + 1_000) for i in range(9)]
    h.produce("predictions", late)
    h.pump()
    h.settle()
    rows = h.latest()
    count = rows[("m", "v1", "all", T0, "service", "count", "")]
    assert count["value"] == sum(1 for e in preds if e["timestamp"] < T0 + 60_000)
    late_row = rows[("m", "v1", "all", T0, "service", "late_events", "")]
    assert late_row["value"] == 9.0
    assert late_row["revision"] == 9
    total_late = sum(s.counters["late_predictions"] for s in h.stage1.values())
    assert total_late == 9


def stored_ids(table: dict[bytes, bytes]) -> set[bytes]:
    """The request ids the join table holds (in its packs): what a restart restores."""
    import orjson
    return {doc["r"].encode() for raw in packs(table).values() for doc in orjson.loads(raw)}


def packs(table: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """The join table's packs (it holds the models' closed-through marks too)."""
    return {k: v for k, v in table.items() if not k.startswith(b"closed-through:")}


def test_join_state_expires_by_event_time() -> None:
    settings = make_settings()
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(
        update={"label_horizon_s": 60, "early_label_ttl_s": 30})})
    preds, labels = make_events(100, seed=2, span_ms=60_000)
    h = Harness(settings)
    h.produce("labels", [dict(labels[0], request_id="orphan")])
    h.pump()
    h.tick(0)  # a checkpoint
    assert stored_ids(h.joins) == {b"orphan"}
    h.produce("predictions", preds)
    h.pump()  # event time moves 59 s on: past the orphan label's 30 s TTL, not the horizon
    h.tick(0)  # a checkpoint: the open windows' entries are written, the orphan deleted
    assert len(stored_ids(h.joins)) == 100 and b"orphan" not in stored_ids(h.joins)
    assert all(key.startswith(b"pack:") for key in packs(h.joins))  # the orphan's is gone
    assert len(packs(h.joins)) < 100  # one record per message, not per event
    later = [dict(preds[0], request_id=f"n{i}", timestamp=T0 + 400_000 + i) for i in range(8)]
    h.produce("predictions", later)
    h.pump()
    h.tick(1)
    assert stored_ids(h.joins) == {f"n{i}".encode() for i in range(8)}
    messages = {partition_for(f"n{i}", h.parts) for i in range(8)}  # one each (< 7 events)
    assert len(packs(h.joins)) == len(messages)  # one record per message; the rest were deleted
    expired = {k: sum(s.counters[k] for s in h.stage1.values())
               for k in ("expired_unlabelled", "expired_early_labels")}
    assert expired == {"expired_unlabelled": 100, "expired_early_labels": 1}


def test_labels_long_before_predictions_wait_and_join() -> None:
    """Label times run an hour ahead (observed later); they still wait for predictions that
    arrive after them: early labels expire by the predictions' event time, not their own."""
    settings = make_settings()
    preds, labels = make_events(200, seed=13)
    labels = [dict(label, timestamp=label["timestamp"] + 3_600_000) for label in labels]
    h = Harness(settings)
    h.produce("labels", labels)
    h.pump()
    h.produce("predictions", preds)
    h.pump()
    h.settle()
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))
    assert sum(s.counters["joined_early_labels"] for s in h.stage1.values()) == len(labels)


def test_a_partition_quiet_at_start_is_waited_for_until_caught_up() -> None:
    """No traffic yet; partition 0's data closes a window while partition 1 has not read
    its predictions: stage 2 waits for partition 1 to be caught up instead of finalising."""
    settings = make_settings()
    settings = settings.model_copy(update={"topics": settings.topics.model_copy(
        update={"partitions": 2})})
    preds, labels = make_events(200, seed=17)
    h = Harness(settings)
    h.tick(31)  # every partition idle, progress says so
    first = [e for e in preds if partition_for(e["request_id"], 2) == 0]
    second = [e for e in preds if partition_for(e["request_id"], 2) == 1]
    h.produce("predictions", first)
    h.pump()
    assert not h.results, "finalised while a source had only just been idle"
    h.produce("predictions", second)
    h.produce("labels", labels)
    h.pump()
    h.settle()
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))


def test_labels_far_ahead_ask_for_a_pause_until_predictions_catch_up() -> None:
    settings = make_settings()
    settings = settings.model_copy(update={
        "topics": settings.topics.model_copy(update={"partitions": 1}),
        "windows": settings.windows.model_copy(update={"max_early_labels": 20})})
    preds, labels = make_events(100, seed=19)
    h = Harness(settings)
    h.produce("labels", labels)
    h.pump()
    stage = h.stage1[0]
    assert stage.early_pending == len(labels) > 20
    assert stage.labels_too_far_ahead() is True
    h.produce("predictions", preds)
    h.pump()
    assert stage.early_pending == 0
    assert stage.labels_too_far_ahead() is False
    h.crash()  # the predictions (windows open, not acked) are read again and join again
    h.pump()
    assert h.stage1[0].early_pending == 0


def test_predictions_read_far_ahead_of_their_labels_still_join_them() -> None:
    """A backlog read predictions first: 25 minutes of them past a 10-minute label horizon
    before any label. Entries wait for the labels to be read (the horizon clock is held at
    the newest label while labels wait unread), so every label joins, as live."""
    settings = make_settings()
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(
        update={"label_horizon_s": 600, "early_label_ttl_s": 30})})
    preds, labels = make_events(400, seed=23, span_ms=1_500_000)
    h = Harness(settings)
    h.produce("predictions", preds)
    h.produce("labels", labels)
    h.pump(only="predictions")
    assert not any(s.counters["expired_unlabelled"] for s in h.stage1.values())
    h.pump()
    h.settle()
    joined = sum(s.counters["joined_labels"] for s in h.stage1.values())
    assert joined == len(labels)
    assert not any(s.counters["expired_early_labels"] for s in h.stage1.values())
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))
    # No label comes any more: the entries go once the predictions are three horizons
    # past them (stream.join.horizon.LABEL_WAIT_HORIZONS).
    later = [dict(preds[0], request_id=f"z{i}", timestamp=T0 + 4_000_000 + i)
             for i in range(40)]  # every partition gets some
    assert {partition_for(e["request_id"], h.parts) for e in later} == set(range(h.parts))
    h.produce("predictions", later)
    h.pump()
    h.tick(1)
    assert sum(s.counters["expired_unlabelled"] for s in h.stage1.values()) == (
        len(preds) - len(labels))


def test_entries_expire_only_for_predictions_before_the_labels_safe_offset() -> None:
    """A model without labels: every label appended before the prediction at offset 1 was
    has been read. The message at offset 1 (event time ten minutes on) must not expire the
    first window's entries (a label for them may have been appended after it); once the
    safe offset passes it, it does, so the join state of a model without labels stays
    bounded."""
    settings = make_settings()
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(
        update={"label_horizon_s": 300})})
    stage = PartitionStage(0, settings, {}, clock=lambda: 0.0)
    first, _ = make_events(20, seed=29, span_ms=50_000)
    later = [dict(first[0], request_id=f"z{i}", timestamp=T0 + 600_000 + i) for i in range(5)]
    stage.horizon.safe_offset = 1
    stage.commit(stage.on_predictions(first, 0, "a"))
    stage.commit(stage.on_predictions(later, 1, "b"))
    stage.commit(stage.tick())
    assert stage.counters["expired_unlabelled"] == 0
    stage.horizon.safe_offset = 2
    stage.commit(stage.tick())
    assert stage.counters["expired_unlabelled"] == len(first)


def test_entries_of_a_model_whose_labels_stopped_wait_three_horizons_at_most() -> None:
    settings = make_settings()
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(
        update={"label_horizon_s": 60})})
    stage = PartitionStage(0, settings, {}, clock=lambda: 0.0)
    first, labels = make_events(20, seed=31, span_ms=50_000)
    stage.horizon.safe_offset = None  # labels wait unread, forever
    stage.commit(stage.on_labels(labels[:1], 0, "l"))
    stage.commit(stage.on_predictions(first, 0, "a"))
    def at(seconds: int) -> list[dict[str, Any]]:
        return [dict(first[0], request_id=f"t{seconds}", timestamp=T0 + seconds * 1000)]
    stage.commit(stage.on_predictions(at(290), 1, "b"))  # < 60 + 60 + 3 x 60 s
    assert stage.counters["expired_unlabelled"] == 0
    stage.commit(stage.on_predictions(at(310), 2, "c"))
    assert stage.counters["expired_unlabelled"] == len(first) - 1  # one got its label


def test_entries_wait_past_three_horizons_while_labels_wait_unread() -> None:
    """Catching up, the predictions fetched before the flow control paused them can run
    more than three horizons ahead of labels still unread: those entries stay until the
    labels are read (then the cap applies again)."""
    settings = make_settings()
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(
        update={"label_horizon_s": 60})})
    stage = PartitionStage(0, settings, {}, clock=lambda: 0.0)
    first, labels = make_events(20, seed=31, span_ms=50_000)
    stage.horizon.safe_offset = None
    stage.horizon.labels_waiting = True
    stage.commit(stage.on_labels(labels[:1], 0, "l"))
    stage.commit(stage.on_predictions(first, 0, "a"))
    far = [dict(first[0], request_id="far", timestamp=T0 + 3_600_000)]
    stage.commit(stage.on_predictions(far, 1, "b"))
    assert stage.counters["expired_unlabelled"] == 0
    stage.commit(stage.on_labels(labels[1:], 1, "l2"))
    assert stage.counters["joined_labels"] + stage.counters["joined_early_labels"] == len(
        labels)
    stage.horizon.labels_waiting = False  # all read: the cap again
    stage.commit(stage.tick())
    assert stage.counters["expired_unlabelled"] == len(first) - len(labels)


def test_stage2_keeps_the_larger_of_two_partials_from_one_source() -> None:
    """A source that lost its progress record re-sends a window rebuilt from fewer events
    (source 0, while source 1 has not closed the window: its progress frame finalises it)."""
    from stream.metrics.window import WindowState
    from stream.windows.frames import WindowId, encode_frame

    settings = make_settings()
    merge = MergeStage(0, settings, 2, {}, {}, FileReferences(settings))
    wid = WindowId(T0, "m", "v1")
    preds, _ = make_events(30, seed=23, span_ms=50_000)

    def partial(events: list[dict[str, Any]]) -> bytes:
        state = WindowState.for_model(settings.metrics.model("m"), settings.metrics)
        state.add_predictions(events)
        return encode_frame("partial", 0, {"wid": wid.as_list(), "n": len(events)},
                            {"all": state})

    merge.on_frame(encode_frame("progress", 1, {"ct": {"m": T0}, "cu": None}, {}), "open")
    merge.on_frame(partial(preds), "first")
    merge.on_frame(partial(preds[-4:]), "rebuilt")
    plan = merge.on_frame(encode_frame("progress", 1, {"ct": {"m": T0 + 60_000}, "cu": None},
                                       {}), "progress")
    [result] = plan.results
    count = next(r for r in result.metrics if r.metric == "count" and r.segment == "all")
    assert count.value == 30
    assert set(plan.acks) == {"first", "rebuilt", "progress"}


def test_a_partial_says_its_source_closed_that_window_and_no_other() -> None:
    """A close sends its window's partial and no progress frame: the window is final once
    every source's partial is in, with no newer progress; a source's partial says nothing
    of its other windows (another version, same start), which wait for its progress."""
    from stream.metrics.window import WindowState
    from stream.windows.frames import WindowId, encode_frame

    settings = make_settings()
    merge = MergeStage(0, settings, 2, {}, {}, FileReferences(settings))
    v1, v2 = WindowId(T0, "m", "v1"), WindowId(T0, "m", "v2")
    preds, _ = make_events(10, seed=3, span_ms=50_000)

    def partial(source: int, wid: WindowId) -> bytes:
        state = WindowState.for_model(settings.metrics.model("m"), settings.metrics)
        state.add_predictions(preds)
        return encode_frame("partial", source, {"wid": wid.as_list(), "n": len(preds)},
                            {"all": state})

    for source in (0, 1):  # both hold m, neither has closed the windows
        merge.on_frame(encode_frame("progress", source, {"ct": {"m": T0}, "cu": None}, {}),
                       "progress")
    assert not merge.on_frame(partial(1, v2), "1:v2").results  # source 0 holds m: wait
    assert not merge.on_frame(partial(0, v1), "0:v1").results
    done = merge.on_frame(partial(1, v1), "1:v1")
    assert [w for r in done.results for w in {(m.model_version) for m in r.metrics}] == ["v1"]
    assert set(done.acks) == {"0:v1", "1:v1"}
    assert v2 in merge.partials  # source 0's v1 partial said nothing of v2
    later = merge.on_frame(encode_frame("progress", 0, {"ct": {"m": T0 + 60_000}, "cu": None},
                                        {}), "later")
    assert [m.model_version for r in later.results for m in r.metrics][:1] == ["v2"]


class RecordingTable(dict[bytes, bytes]):
    """A table that remembers which keys were written (each write is a changelog message)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.written: list[bytes] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.written.append(key)
        super().__setitem__(key, value)


def test_a_replay_writes_its_join_entries_again() -> None:
    """An on-disk table store (RocksDB) can hold entries whose changelog message a crash lost;
    a replayed event writes its entry again, so the changelog (what the partition's next
    owner restores) has it too. Replayed predictions still rebuild their window exactly."""
    settings = make_settings()
    preds, labels = make_events(20, span_ms=10_000)  # one window, still open at the end
    table = RecordingTable()
    first = PartitionStage(0, settings, table)
    first.on_predictions(preds[:10], 7, "p")
    first.on_predictions(preds[10:], 8, "p")
    first.on_labels(labels, 3, "l")
    assert table.written == []  # nothing is acked yet: no checkpoint
    assert first.commit(Plan(acks=["tick"], tick=True)) == ["tick"]  # a tick: a checkpoint
    from stream.windows.frames import WindowId
    window = WindowId(T0, "m", "v1")
    packs = [pack_key(0, "l", 3, window), pack_key(0, "p", 7, window)]
    assert table.written == packs  # one write per side and checkpoint, not one per event
    local = RecordingTable(table)  # what survived on disk; the changelog may not have it
    again = PartitionStage(0, settings, local)
    again.on_predictions(preds[:10], 7, "p")
    again.on_predictions(preds[10:], 8, "p")
    again.on_labels(labels, 3, "l")
    again.commit(Plan(acks=["tick"], tick=True))
    assert local.written == packs  # each written again, once
    assert dict(local) == dict(table)  # same state: a replay is not a new event
    assert sum(w.events for w in again.open.values()) == len(preds)
    assert again.counters["duplicate_predictions"] == 0 == again.counters["duplicate_labels"]


def test_a_close_sends_the_labelled_side_then_the_partial_and_no_progress() -> None:
    """The partial is what may complete a window in stage 2 (its partition then counts as
    done with it): the window's labelled side goes before it, or the window would be
    finalised without it and revised at once; the close itself broadcasts nothing."""
    settings = make_settings()
    preds, labels = make_events(20, span_ms=10_000)  # one window
    stage = PartitionStage(0, settings, {})
    stage.on_predictions(preds, 0, "p")
    stage.on_labels(labels, 0, "l")
    later = [dict(preds[0], request_id="late", timestamp=T0 + 600_000)]
    plan = stage.on_predictions(later, 1, "p2")  # the watermark passes the window's end
    assert [decode_frame(value).kind for _, value in plan.frames] == ["perf", "partial"]
    assert plan.closed_through and not plan.broadcast


def test_windows_past_the_horizon_are_forgotten_as_windows_close_not_only_on_ticks() -> None:
    """A close sends no progress frame, but the labelled sides of windows past the label
    horizon still go as windows close: a backlog read between two ticks held twice as many
    (peak RSS of a make bench backlog +30 MB)."""
    base = make_settings()
    settings = base.model_copy(update={"windows": base.windows.model_copy(
        update={"label_horizon_s": 120, "early_label_ttl_s": 120})})
    preds, labels = make_events(600, seed=8, span_ms=1_800_000)  # 30 windows, no tick
    stage = PartitionStage(0, settings, {})
    held = []
    for i in range(0, len(preds), 20):
        stage.on_predictions(preds[i:i + 20], i, "p")
        batch = [lab for lab in labels if lab["request_id"] in
                 {e["request_id"] for e in preds[i:i + 20]}]
        if batch:
            stage.on_labels(batch, i, "l")
        held.append(len(stage.perf))
    assert max(held) <= 6  # the horizon's two windows, the open ones, one closing


def test_only_a_caught_up_tick_declares_a_model_idle() -> None:
    """Predictions held up (a slow fetch, a hole read from the broker) while labels flow:
    a label must not close the open window by idleness, nor must a tick while the partition
    is not caught up to the idle timeout past the model's last event. A CI run showed this
    symptom: a window closed early, the rest of its events counted late."""
    settings = make_settings()  # idle timeout 30 s
    preds, labels = make_events(20, span_ms=10_000)
    clock = [0.0]
    stage = PartitionStage(0, settings, {}, clock=lambda: clock[0])
    stage.on_predictions(preds[:10], 0, "p0")
    clock[0] = 31.0
    plan = stage.on_labels(labels, 0, "l0")
    assert stage.open and not stage.clocks["m"].idle and not plan.closed_through
    plan = stage.tick(None)  # not known to be caught up
    assert stage.open and not stage.clocks["m"].idle and not plan.closed_through
    plan = stage.tick(29.0)  # caught up, but only 29 s past the model's last event
    assert stage.open and not stage.clocks["m"].idle and not plan.closed_through
    stage.on_predictions(preds[10:], 1, "p1")  # the rest (at t=31): nothing late
    assert stage.counters["late_predictions"] == 0
    clock[0] = 62.0
    plan = stage.tick(61.5)
    assert not stage.open and stage.clocks["m"].idle
    assert plan.closed_through == {"m": T0 + 60_000}
    assert set(plan.acks) >= {"p0", "p1"}


def _two_models(n: int, seed: int, span_ms: int = 180_000) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    a_preds, a_labels = make_events(n, seed=seed, span_ms=span_ms)
    b_preds, b_labels = make_events(n, seed=seed + 1, span_ms=span_ms)
    for events in (b_preds, b_labels):
        for e in events:
            e["request_id"] = "b" + e["request_id"]
            e["model_id"] = "b"
    return a_preds, a_labels, b_preds, b_labels


def _rows_of(rows: dict[tuple[Any, ...], Any], model_id: str) -> dict[tuple[Any, ...], Any]:
    return {k: v for k, v in rows.items() if k[0] == model_id}


def test_one_models_clock_never_closes_another_models_windows() -> None:
    """Model A's events come first and move far past B's event time; B's cover the same
    span and come after (a bulk sender, a replay): B's windows are all there, with the
    same figures as when B is alone, and none of its events is late."""
    settings = make_settings()
    a_preds, a_labels, b_preds, b_labels = _two_models(300, seed=31)
    h = Harness(settings)
    h.produce("predictions", a_preds)
    h.produce("labels", a_labels)
    h.pump()
    h.tick(1)  # A's clock is past every window of the span: A's windows close
    assert h.results
    h.produce("predictions", b_preds)
    h.produce("labels", b_labels)
    h.pump()
    h.settle()
    assert sum(s.counters["late_predictions"] for s in h.stage1.values()) == 0
    alone = Harness(settings)
    run_all(alone, b_preds, b_labels)
    got, want = _rows_of(h.latest(), "b"), alone.latest()
    assert_same(got, want)
    assert_same(_rows_of(h.latest(), "m"), offline(settings, a_preds, a_labels, h.refs))


def test_a_late_event_of_a_window_that_never_opened_is_counted() -> None:
    """Every prediction consumed is in some window's count or in its late_events row, even
    when the window had no on-time event at all (its rows are created for it)."""
    settings = make_settings()
    preds, labels = make_events(120, seed=37, span_ms=120_000)
    h = Harness(settings)
    h.produce("predictions", preds[60:])  # the second window first: the first one closes
    h.pump()
    h.settle()
    h.produce("predictions", preds[:60])  # all late: their window never opened
    h.produce("labels", labels)
    h.pump()
    h.settle()
    rows = h.latest()
    counted = sum(v["value"] for k, v in rows.items()
                  if k[2] == "all" and k[5] == "count" and k[4] == "service")
    late = sum(v["value"] for k, v in rows.items() if k[5] == "late_events")
    assert late == 60 and counted == 60
    window_rows = {k: v for k, v in rows.items() if k[3] == T0}
    assert window_rows and all(k[4] in {"performance", "service", "estimate", "ingest"}
                               for k in window_rows)
    ingest = {k[5]: v["value"] for k, v in window_rows.items() if k[4] == "ingest"}
    assert ingest["predictions"] == 60 and ingest["late_predictions"] == 60
    assert rows[("m", "v1", "all", T0, "service", "late_events", "")]["value"] == 60


def test_allowed_lateness_is_per_model() -> None:
    """A model with a longer allowed lateness keeps its windows open for it; the global one
    applies to the others."""
    settings = make_settings(models={"b": {"allowed_lateness_s": 50}})
    assert settings.windows.allowed_lateness_s == 5
    a_preds, _, b_preds, _ = _two_models(2, seed=41, span_ms=1_000)
    stage = PartitionStage(0, settings, {})
    stage.on_predictions(a_preds + b_preds, 0, "p0")
    later = [dict(e, request_id=e["request_id"] + "x", timestamp=T0 + 60_000 + 20_000)
             for e in (a_preds[0], b_preds[0])]
    plan = stage.on_predictions(later, 1, "p1")  # watermarks: A past T0+60 s, B not
    assert plan.closed_through["m"] == T0 + 60_000
    assert plan.closed_through.get("b", 0) <= T0  # B's watermark is still in its window
    assert {w.model_id for w in stage.open if w.window_start == T0} == {"b"}


def test_a_perf_frame_past_the_label_horizon_is_not_a_new_window() -> None:
    """A window forgotten after its label horizon must not come back as a window with only
    late events (rows with a lower revision, from part of its labels)."""
    from stream.metrics.window import WindowState
    from stream.windows.frames import WindowId, encode_frame

    settings = make_settings()  # label horizon 3,600 s
    merge = MergeStage(0, settings, 1, {}, {}, FileReferences(settings))
    far = T0 + 2 * 3_600_000
    merge.on_frame(encode_frame("progress", 0, {"ct": {"m": far}, "cu": None}, {}), "tick")
    state = WindowState.for_model(settings.metrics.model("m"), settings.metrics)
    old = WindowId(T0, "m", "v1")
    plan = merge.on_frame(encode_frame("perf", 0, {"wid": old.as_list(), "lab": 0, "late": 1},
                                       {"all": state}), "perf")
    assert plan.acks == ["perf"] and not plan.results and not merge.partials
    recent = WindowId(far - 60_000, "m", "v1")
    plan = merge.on_frame(encode_frame("perf", 0, {"wid": recent.as_list(), "lab": 0,
                                                   "late": 1}, {"all": state}), "perf2")
    [result] = plan.results  # within the horizon: a window of late events gets its rows
    late = next(r for r in result.metrics if r.metric == "late_events")
    assert late.value == 1 and plan.acks == ["perf2"]


def test_a_checkpoint_writes_the_entries_before_the_mark_and_holds_acks_until_then() -> None:
    """After a crash, events of a window at or below its model's closed-through mark are
    skipped as replays only if their join entries come back: a checkpoint writes the entries,
    then the mark, into one table (one changelog partition keeps that order). Seen on the
    real broker: a worker that exited hard with the mark in Kafka and not the entries counted
    a whole window's replayed events late. Between checkpoints, handles wait in the stage."""
    settings = make_settings()
    preds, labels = make_events(40, span_ms=50_000)
    table = RecordingTable()
    stage = PartitionStage(0, settings, table)
    mark = b"closed-through:0:m"
    plan = stage.on_predictions(preds, 0, "p0")
    assert plan.closed_through == {"m": T0} and not plan.acks  # the first mark: no window
    assert stage.commit(plan) == []
    from stream.windows.frames import WindowId
    first, second = WindowId(T0, "m", "v1"), WindowId(T0 + 60_000, "m", "v1")
    assert table.written == [pack_key(0, "p", 0, first), mark]
    assert table[mark] == str(T0).encode()
    early = [dict(labels[0], request_id="early")]
    plan = stage.on_labels(early, 0, "l0")  # an early label: nothing to wait for ...
    assert plan.acks == ["l0"] and stage.commit(plan) == []  # ... but no checkpoint yet
    assert len(table.written) == 2
    push = [dict(preds[0], request_id="push", timestamp=T0 + 60_000 + 6_000)]
    plan = stage.on_predictions(push, 1, "p1")  # the watermark passes the first window
    assert plan.closed_through == {"m": T0 + 60_000} and plan.acks == ["p0"]
    assert stage.commit(plan) == ["l0", "p0"]
    assert table.written[2:] == [pack_key(0, "l", 0), pack_key(0, "p", 1, second), mark]
    assert table[mark] == str(T0 + 60_000).encode()
    tick = stage.tick(None)
    tick.acks.append("t")
    assert stage.commit(tick) == ["t"]  # nothing buffered: no write, the tick is acked
    assert len(table.written) == 5
    assert stage.counters["checkpoints"] == 3  # the two marks and the tick (/stats)


def test_fairness_without_the_attribute_as_a_segment() -> None:
    """The protected attribute is routed for fairness although ``segments`` is empty: the
    stream still equals the offline computation, no ``country=`` rows are written, the gaps
    have values once groups reach ``min_group_size``, and carry a reason when they do not."""
    settings = make_settings(segments=[], models={"m": {"protected_attribute": "country",
                                                        "min_group_size": 5}})
    preds, labels = make_events(300, seed=3)
    h = Harness(settings)
    run_all(h, preds, labels)
    want = offline(settings, preds, labels, h.refs)
    assert_same(h.latest(), want)
    assert {doc["segment"] for doc in want.values()} == {"all"}
    fair = [doc for doc in want.values() if doc["family"] == "fairness"]
    assert fair and all(doc["value"] is not None and doc["reason"] == "" for doc in fair)
    strict = make_settings(segments=[], models={"m": {"protected_attribute": "country",
                                                      "min_group_size": 10_000}})
    h = Harness(strict)
    run_all(h, preds, labels)
    fair = [doc for doc in h.latest().values() if doc["family"] == "fairness"]
    assert fair and all(doc["value"] is None and doc["reason"] == "groups_below_min_size"
                        for doc in fair)


@pytest.mark.parametrize("crash_after", [None, 30, 120, 260])
def test_expired_windows_leave_no_join_packs_across_crashes(crash_after: int | None) -> None:
    """Windows expire during the stream (a 2-minute horizon over 15 minutes of events), a
    fifth of the labels come before their predictions (they move to their window's pack
    when it comes), and the worker crashes and replays: the figures equal the offline ones,
    and once every window is past the horizon the join table holds no pack at all (none
    leaked by a move, an expiry or a replay)."""
    settings = make_settings()
    settings = settings.model_copy(update={"windows": settings.windows.model_copy(
        update={"label_horizon_s": 120, "early_label_ttl_s": 300})})
    preds, labels = make_events(400, seed=5, span_ms=900_000)
    h = Harness(settings)
    h.produce("labels", labels[: len(labels) // 5])
    h.produce("predictions", preds)
    h.produce("labels", labels[len(labels) // 5:])
    if crash_after is not None:
        h.pump(limit=crash_after)
        h.tick(1)
        h.crash()
        h.pump(limit=crash_after // 3 + 1)
        h.crash()
    h.pump()
    h.settle()
    assert_same(h.latest(), offline(settings, preds, labels, h.refs))
    if crash_after is None:  # (a crash resets the counters)
        expired = sum(s.counters["expired_unlabelled"] for s in h.stage1.values())
        assert expired > 0  # windows did expire during the run
    later = [dict(preds[0], request_id=f"z{i}", timestamp=T0 + 10_000_000 + i)
             for i in range(40)]  # every partition: the clocks move past every window
    assert {partition_for(e["request_id"], h.parts) for e in later} == set(range(h.parts))
    h.produce("predictions", later)
    h.pump()
    h.tick(1)
    h.pump()
    packs = [k for k in h.joins if k.startswith(b"pack:")]
    assert all(b":%d:" % (T0 + 10_000_000 - (T0 + 10_000_000) % 60_000) in k for k in packs)


def test_progress_goes_on_every_tick_while_marks_move_then_every_quiet_interval() -> None:
    """A progress frame per tick goes to every partials partition; a partition whose marks
    stand still sends one every ``quiet_progress_s`` (an idle worker's CPU was mostly
    these), and one per tick again from the moment they move."""
    settings = make_settings()  # quiet_progress_s: 5 (the default)
    clock = [0.0]
    stage = PartitionStage(0, settings, {}, clock=lambda: clock[0])

    def ticks(seconds: range) -> list[int]:
        sent = []
        for second in seconds:
            clock[0] = float(second)
            if stage.tick(clock[0]).broadcast:
                sent.append(second)
        return sent

    assert ticks(range(0, 12)) == [0, 5, 10]  # nothing here yet: marks never move
    preds, _ = make_events(50, seed=5)
    clock[0] = 12.0
    plan = stage.on_predictions(preds, 0, object())
    assert plan.broadcast, "a model back (or new) here: said at once"
    assert ticks(range(12, 30)) == [12, 13, 14, 15, 16, 21, 26]  # idle at 42 s: not yet
    clock[0] = 60.0
    assert stage.tick(60.0).broadcast, "the model went idle here: marks moved"
    frame = decode_frame(stage.tick(61.0).broadcast[0])
    assert frame.header["ct"] == {} and frame.header["cu"] == 61.0


@pytest.mark.parametrize(("quiet", "waits"), [(0.0, 1), (3.0, 3), (5.0, 5)])
def test_a_window_waiting_for_a_quiet_partition_waits_one_quiet_interval_at_most(
        quiet: float, waits: int) -> None:
    """Model m only on partition 0: its closed windows wait for partition 1 (which never
    saw m) to be caught up past the moment partition 0 closed them; partition 1's marks
    stand still, so that word comes with its next frame, ``quiet_progress_s`` at most."""
    base = make_settings()
    settings = base.model_copy(update={
        "topics": base.topics.model_copy(update={"partitions": 2}),
        "windows": base.windows.model_copy(update={"quiet_progress_s": quiet})})
    preds = [e for e in make_events(300, seed=23)[0]
             if partition_for(e["request_id"], 2) == 0]
    h = Harness(settings)
    h.tick(31)
    h.produce("predictions", preds)
    h.pump()  # partition 0 closes the first windows: its marks move
    assert not h.results
    waited = 0
    while not h.results and waited < 7:
        h.tick(1)
        waited += 1
    assert waited == waits


def test_windows_closed_by_idleness_everywhere_are_final_on_the_next_tick() -> None:
    """Every partition closes a model's last window by idleness (the end of its traffic):
    each becomes a source stage 2 waits on for a caught-up time; their marks just moved,
    so their frames come on the next tick, not a quiet interval later."""
    settings = make_settings()
    preds, labels = make_events(300, seed=29)
    h = Harness(settings)
    h.produce("predictions", preds)
    h.produce("labels", labels)
    h.pump()
    h.tick(31)  # idle everywhere: the last window closes
    h.tick(1)
    finals = {orjson.loads(k)[2] for k in h.finals}
    assert finals == {T0, T0 + 60_000, T0 + 120_000}
