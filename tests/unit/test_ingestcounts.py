"""The ``ingest`` rows: attribution of rejects, the ledger's replay guard, and the rows
stage 2 writes (same for any partitioning, and after crashes and replays)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from stream.config import Settings, load_settings
from stream.events import Rejected
from stream.ingest.counts import (
    DUPLICATE_PREDICTIONS,
    MAX_WINDOWS,
    UNKNOWN_MODEL,
    IngestLedger,
    attribute,
    ingest_rows,
    sum_counts,
)
from stream.sdk.partitioning import partition_for
from stream.windows.frames import WindowId
from tests.unit.test_topology import T0, Harness, make_events

SIZE = 60_000


def rejected(doc: Any, reason: str = "wrong_type") -> Rejected:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return Rejected(reason, "", raw)


@pytest.mark.parametrize(("doc", "want"), [
    ({"model_id": "m", "timestamp": 5, "model_version": "v1"}, ("m", "v1", 5)),
    ({"model_id": "m", "timestamp": 5}, ("m", "", 5)),
    ({"model_id": "m", "timestamp": 5, "model_version": 3}, ("m", "", 5)),
    ({"model_id": "m", "timestamp": "2024-01-01T00:00:00Z"}, None),  # not an integer
    ({"model_id": "m", "timestamp": 5.0}, None),
    ({"model_id": "m", "timestamp": True}, None),
    ({"model_id": "m", "timestamp": -1}, None),
    ({"model_id": "bad id!", "timestamp": 5}, None),  # not an identifier: not a store key
    ({"model_id": 7, "timestamp": 5}, None),
    ({"timestamp": 5}, None),
    ([{"model_id": "m", "timestamp": 5}], None),
    (b"{not json", None),
])
def test_attribute_takes_only_a_model_id_and_an_integer_timestamp(doc: Any, want: Any) -> None:
    assert attribute(rejected(doc)) == want


def test_a_too_large_message_is_not_parsed() -> None:
    assert attribute(rejected({"model_id": "m", "timestamp": 5}, "too_large")) is None


def ledger(table: dict[bytes, bytes], now: list[float], times: dict[str, int] | None = None,
           horizon_ms: int = 3_600_000) -> IngestLedger:
    clocks = times or {}
    return IngestLedger(0, table, SIZE, horizon_ms, clocks.get, lambda: now[0])


def test_rejects_go_to_their_window_or_to_the_unknown_window_of_the_wall_clock() -> None:
    table: dict[bytes, bytes] = {}
    led = ledger(table, [T0 / 1000 + 125.0])
    changed = led.rejected([rejected({"model_id": "m", "timestamp": T0 + 10, "model_version":
                                      "v1"}), rejected(b"junk", "not_json"),
                            rejected({"model_id": "m", "timestamp": T0 + 61_000})],
                           "prediction", 3)
    unknown = WindowId(T0 + 120_000, UNKNOWN_MODEL, "")
    assert changed == [WindowId(T0, "m", "v1"), unknown, WindowId(T0 + 60_000, "m", "")]
    assert led.window(WindowId(T0, "m", "v1")) == {"rejected:wrong_type": 1}
    assert led.window(unknown) == {"rejected:not_json": 1}


def test_a_window_past_the_label_horizon_and_a_full_ledger_go_to_unknown() -> None:
    now = [0.0]
    led = ledger({}, now, times={"m": T0 + 10 * 3_600_000})
    assert led.target(WindowId(T0, "m", "v1")).model_id == UNKNOWN_MODEL
    assert led.target(WindowId(T0 + 9 * 3_600_000, "m", "v1")).model_id == "m"
    for i in range(MAX_WINDOWS):
        led.add(WindowId(i * SIZE, "n", ""), DUPLICATE_PREDICTIONS)
    assert led.target(WindowId(SIZE, "n", "")).model_id == "n"  # known: still counted
    assert led.target(WindowId(-SIZE, "n", "")).model_id == UNKNOWN_MODEL


def test_a_message_counted_before_the_checkpoint_is_not_counted_again() -> None:
    """The ledger and the offsets it counted through are one table value: after a restart,
    messages at or below them were counted; the ones above were not (nor acked)."""
    table: dict[bytes, bytes] = {}
    now = [T0 / 1000]
    led = ledger(table, now)
    bad = [rejected({"model_id": "m", "timestamp": T0})]
    wid = WindowId(T0, "m", "")
    led.rejected(bad, "prediction", 10)
    led.duplicate(wid, DUPLICATE_PREDICTIONS, "label", 4)
    value = led.checkpoint()
    assert value is not None and led.checkpoint() is None  # unchanged since
    table[led.key] = value
    led.rejected(bad, "prediction", 11)  # not checkpointed: lost with the crash
    again = ledger(table, now)
    assert again.window(wid) == {"duplicate_predictions": 1, "rejected:wrong_type": 1}
    assert again.rejected(bad, "prediction", 10) == []  # replayed: counted already
    assert again.duplicate(wid, DUPLICATE_PREDICTIONS, "label", 4) == []
    assert again.rejected(bad, "prediction", 11) == [wid]  # replayed: counted now
    assert again.window(wid) == {"duplicate_predictions": 1, "rejected:wrong_type": 2}
    again.retain([])
    assert again.counts == {} and again.checkpoint() is not None
    # Messages that count nothing leave it alone: no table write at the checkpoint.
    assert again.rejected([], "prediction", 50) == [] and again.checkpoint() is None


def test_ingest_rows_known_answer() -> None:
    counts = sum_counts([{"ing": {"rejected:not_json": 2, "duplicate_labels": 1}},
                         {"ing": {"rejected:not_json": 1, "rejected:wrong_type": 4,
                                  "duplicate_predictions": 2}}, {}])
    rows = {(r.metric, r.feature): r for r in ingest_rows(
        WindowId(T0, "m", "v1"), SIZE, predictions=90, late=5, labels_joined=60,
        counts=counts, now=1)}
    values = {k: r.value for k, r in rows.items()}
    total = 90 + 60 + 2 + 1 + 7
    assert values == {
        ("predictions", ""): 90, ("late_predictions", ""): 5, ("labels_joined", ""): 60,
        ("duplicate_predictions", ""): 2, ("duplicate_labels", ""): 1, ("rejected", ""): 7,
        ("rejected", "not_json"): 3, ("rejected", "wrong_type"): 4,
        ("rejected_share", ""): pytest.approx(7 / total)}
    assert {r.revision for r in rows.values()} == {total}
    assert {(r.family, r.segment, r.window_end) for r in rows.values()} == {
        ("ingest", "all", T0 + SIZE)}


# ---------------------------------------------------------------- through both stages
def settings_for(partitions: int) -> Settings:
    return load_settings(
        None, topics={"partitions": partitions},
        windows={"size_s": 60, "allowed_lateness_s": 5, "idle_partition_timeout_s": 30,
                 "revision_interval_s": 1, "label_horizon_s": 3600, "early_label_ttl_s": 600},
        metrics={"segments": ["country"], "sample_capacity": 40, "min_sample_size": 5})


def raw_messages(parts: int, seed: int) -> tuple[list[tuple[str, int, bytes]], Counter[Any]]:
    """Predictions and labels as raw messages (batches of up to 5 mixed with bad elements),
    re-sent duplicates and junk; and the ingest counts they must give, by (window, name)."""
    preds, labels = make_events(240, seed=seed)
    rng = random.Random(seed)
    want: Counter[Any] = Counter()
    by_part: dict[tuple[str, int], list[Any]] = {}

    def put(topic: str, part: int, item: Any) -> None:
        by_part.setdefault((topic, part), []).append(item)

    junk = 0
    for i, p in enumerate(preds):
        if i % 20 == 0:  # nothing to attribute: the unknown window of the wall clock
            put("predictions", partition_for(p["request_id"], parts), b"{junk")
            junk += 1
        wid = (p["model_id"], "v1", p["timestamp"] - p["timestamp"] % SIZE)
        want[wid, "predictions"] += 1
        put("predictions", partition_for(p["request_id"], parts), p)
        if rng.random() < 0.1:  # a retrying producer
            put("predictions", partition_for(p["request_id"], parts), p)
            want[wid, "duplicate_predictions"] += 1
        if rng.random() < 0.1:  # a broken one: still says its model and time
            bad = {**p, "request_id": p["request_id"] + "x", "features": "oops"}
            put("predictions", partition_for(bad["request_id"], parts), bad)
            want[wid, "rejected:wrong_type"] += 1
    for label in labels:
        put("labels", partition_for(label["request_id"], parts), label)
    messages = []
    for (topic, part), items in sorted(by_part.items()):
        batch: list[Any] = []
        for item in [*items, None]:
            if (item is None or isinstance(item, bytes) or len(batch) == 5) and batch:
                messages.append((topic, part, orjson.dumps(batch)))
                batch = []
            if isinstance(item, bytes):
                messages.append((topic, part, item))
            elif item is not None:
                batch.append(item)
    want[(UNKNOWN_MODEL, "", 0), "rejected:not_json"] += junk
    return messages, want


def ingest_counts(h: Harness) -> Counter[Any]:
    got: Counter[Any] = Counter()
    for (model, version, _seg, start, family, metric, feature), doc in h.latest().items():
        if family == "ingest" and metric in {"predictions", "duplicate_predictions"} and (
                doc["value"]):
            got[(model, version, start), metric] += int(doc["value"])
        elif family == "ingest" and metric == "rejected" and feature:
            got[(model, version, start), f"rejected:{feature}"] += int(doc["value"])
    return got


def run(partitions: int, seed: int, crashes: tuple[int, ...] = ()) -> Harness:
    h = Harness(settings_for(partitions))
    messages, _ = raw_messages(partitions, seed)
    for topic, part, value in messages:
        h.append(topic, part, value)
    for limit in crashes:
        h.pump(limit=limit)
        h.crash()
    h.pump()
    h.settle()
    return h


@pytest.mark.parametrize("seed", [1, 2])
def test_ingest_rows_count_every_event_for_any_partitioning_and_replay(seed: int) -> None:
    _, want = raw_messages(1, seed)
    one, four = run(1, seed), run(4, seed)
    crashed = run(4, seed, crashes=(17, 60, 3))
    assert ingest_counts(one) == want
    ingest = {k: v for k, v in one.latest().items() if k[4] == "ingest"}
    for other in (four, crashed):  # every ingest row, the same (revision included)
        assert {k: v for k, v in other.latest().items() if k[4] == "ingest"} == ingest


def test_a_message_of_rejects_only_waits_for_the_checkpoint_that_counts_it() -> None:
    """Acked at once, a crash before the next checkpoint would lose its counts."""
    h = Harness(settings_for(1))
    h.append("predictions", 0, b"{junk")
    h.pump()
    h.crash()  # no tick since: the ledger was not written, the message not acked
    preds, _ = make_events(20, seed=5)
    h.append("predictions", 0, orjson.dumps(preds))
    h.pump()
    h.settle()
    rows = h.latest()
    assert rows[(UNKNOWN_MODEL, "", "all", 0, "ingest", "rejected", "not_json")]["value"] == 1
    assert rows[("m", "v1", "all", T0, "ingest", "predictions", "")]["value"] == 7


# ---------------------------------------------------------------- alert rules
def ingest_window(i: int, rejected_events: int, model: str = "m") -> Any:
    from stream.results import WindowResults

    counts = {"rejected:not_json": rejected_events} if rejected_events else {}
    return WindowResults((), tuple(ingest_rows(WindowId(T0 + i * SIZE, model, "v1"), SIZE,
                                               100, 0, 50, counts, 0)))


def fired(settings: Settings, windows: list[Any]) -> list[tuple[str, str, int, Any]]:
    from stream.alerts.evaluator import ModelAlerts

    state = ModelAlerts()
    out = []
    for i, results in enumerate(windows):
        for a in state.evaluate(results, settings, None, now=i).alerts:
            out.append((a.rule, a.state, (a.window_start - T0) // SIZE, a.feature))
    return out


def test_the_dead_letter_rate_rule_is_an_option_over_the_ingest_rows() -> None:
    windows = [ingest_window(i, r) for i, r in enumerate([0, 1, 30, 0, 0, 0])]
    assert fired(Settings(windows={"size_s": 60}), windows) == []  # off by default
    on = Settings(windows={"size_s": 60}, alerts={"dead_letter_share": 0.05})
    # 1 of 151 events is below 5 %; 30 of 180 is above: fires, then resolves after 2 clear.
    assert fired(on, windows) == [("dead_letter_rate", "firing", 2, None),
                                  ("dead_letter_rate", "resolved", 4, None)]


def test_a_user_rule_reads_one_reason() -> None:
    rule = {"name": "junk", "family": "ingest", "metric": "rejected", "feature": "not_json",
            "op": ">", "threshold": 0}
    settings = Settings(windows={"size_s": 60}, rules=[rule],
                        alerts={"default_rules": False})
    assert fired(settings, [ingest_window(0, 0), ingest_window(1, 2)]) == [
        ("junk", "firing", 1, "not_json")]
