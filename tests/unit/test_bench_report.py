"""The pure half of ``make bench`` (load_tests/bench_report.py): percentiles against numpy,
window-close latencies from timestamps, the table and the JSON shape. The benchmarks
themselves never run in the test suite."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from load_tests.bench_report import (
    HISTORY_HEADER,
    JSON_VERSION,
    PassTracker,
    bench_document,
    close_latencies,
    close_times,
    format_table,
    history_row,
    latency_summary,
    markdown_table,
    percentile,
    table_rows,
    watermark_passes,
)
from stream.windows.frames import window_start


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-9,
                                                  abs=1e-6)


def test_percentile_known_answers_and_bad_input() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary() -> None:
    s = latency_summary([0.5, 1.0, 1.5, 2.0, 10.0])
    assert s == {"n": 5, "p50": 1.5, "p95": 8.4, "p99": 9.68, "max": 10.0}
    assert latency_summary([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_a_window_passes_when_its_slowest_partition_does() -> None:
    per_partition = {("m", 0, 0): 61.0, ("m", 0, 1): 62.5, ("m", 0, 2): 61.2,
                     ("m", 60_000, 0): 121.0}  # not passed on partitions 1 and 2 yet
    assert watermark_passes(per_partition, partitions=3) == {("m", 0): 62.5}


def test_close_is_the_last_record_of_the_first_emission() -> None:
    records = [
        ("m", 0, 1000, 63.0), ("m", 0, 1000, 63.4),  # the close: two rows
        ("m", 0, 9000, 71.0),  # a revision later
        ("n", 0, 2000, 64.0),
    ]
    # Order of arrival must not matter: a revision read first does not count as the close.
    assert close_times(reversed(records)) == {("m", 0): 63.4, ("n", 0): 64.0}
    latencies, missing = close_latencies({("m", 0): 62.5, ("n", 0): 63.0, ("o", 0): 60.0},
                                         close_times(records))
    assert latencies == pytest.approx([0.9, 1.0])
    assert missing == [("o", 0)]


SCENARIOS = {
    "backlog_100": {"batch_size": 100, "events": 150_000, "events_per_cpu_s": 10_500,
                    "e2e_events_per_s": 3_700, "e2e_s": 40.5, "worker_cpu_s": 14.3,
                    "peak_rss_mb": 241, "labels": 50_001, "labels_joined": 49_990,
                    "bare": {"orjson": {"events_per_cpu_s": 563_000, "events_per_s": 122_000}}},
    "backlog_1": {"batch_size": 1, "events": 30_000, "events_per_cpu_s": 4_100,
                  "e2e_events_per_s": 2_000, "peak_rss_mb": 200, "bare": {}},
    "two_workers": {"partitions": 4, "cpu_per_event_ratio": 1.08, "speedup": 1.4,
                    "events_per_cpu_s": 9_700, "peak_rss_mb": 230},
    "steady": {"rate": 6_000, "behind_at_end": 13_000,
               "latency_s": {"n": 12, "p50": 0.81, "p95": 1.2, "p99": 1.31, "max": 1.33},
               "missing": 0,
               "first_window_latency_s": {"n": 6, "p50": 14.2, "p95": 16.0, "p99": 16.5,
                                          "max": 16.74},
               "events_per_cpu_s": 9_000, "peak_rss_mb": 250},
}


def test_table_rows_judge_the_targets() -> None:
    rows = {(r.scenario, r.figure): r for r in table_rows(SCENARIOS)}
    assert rows[("100-event msgs", "events per worker CPU-second")].ok is False  # < 20,000
    assert rows[("1-event msgs", "events per worker CPU-second")].ok is True  # >= 4,000
    assert rows[("100-event msgs", "worker / bare, per CPU-second (headline)")].value == \
        "0.019 (54x)"
    assert rows[("100-event msgs", "labels joined / sent")].value == "49,990 / 50,001"
    assert rows[("2 workers, 4 parts", "CPU per event, two workers / one")].ok is False
    # The latency target is stated at 10,000 events/s: at a lower rate no verdict is given.
    lat = rows[("steady 6,000 ev/s", "window-close latency s, p50 / p95 / p99")]
    assert lat.value == "0.81 / 1.20 / 1.31" and lat.ok is None
    assert rows[("steady 6,000 ev/s", "each model's first (partial) window, p50 / max s")
                ].value == "14.20 / 16.74"
    # 13,000 events behind at 6,000/s: more than 2 s of traffic, so not a steady run.
    assert rows[("steady 6,000 ev/s", "events not yet consumed when the traffic stopped")
                ].ok is False
    at_rate = table_rows({"steady": {**SCENARIOS["steady"], "rate": 10_000}})
    assert at_rate[0].ok is True
    missed = table_rows({"steady": {**SCENARIOS["steady"], "rate": 10_000, "missing": 2}})
    assert missed[0].ok is None  # windows that never closed: the percentiles are not the truth
    assert rows[("peak RSS vs length", "long / short stream")].value.startswith("not run")


def test_repeated_runs_are_listed_under_the_median_one() -> None:
    repeated = {**SCENARIOS["backlog_100"], "runs": [9_800, 10_500, 11_900]}
    rows = table_rows({"backlog_100": repeated})
    assert rows[0].value == 10_500 and rows[0].ok is False
    assert (rows[1].figure, rows[1].value) == ("each of 3 runs (the median one above)",
                                               "9,800 / 10,500 / 11,900")
    single = table_rows({"backlog_100": {**SCENARIOS["backlog_100"], "runs": [10_500]}})
    assert not any(r.figure.startswith("each of") for r in single)


def test_formatted_tables_have_one_line_per_row_and_aligned_columns() -> None:
    rows = table_rows(SCENARIOS)
    text = format_table(rows).splitlines()
    assert len(text) == len(rows) + 2
    value_end = text[0].index("value") + len("value")  # values are right-aligned
    for line, row in zip(text[2:], rows, strict=True):
        assert line.index(row.shown(), len(row.scenario)) + len(row.shown()) == value_end
    assert "10,500" in text[2] and "MISS" in text[2] and text[2].startswith("100-event msgs")
    assert not text[3].startswith("100-event msgs")  # the scenario is written once per group
    md = markdown_table(rows).splitlines()
    assert len(md) == len(rows) + 2
    assert all(line.count("|") == 6 for line in md)


def test_json_document_shape_round_trips() -> None:
    meta = {"date": "2026-01-01 00:00 UTC", "commit": "0123456789abcdef", "cores": 2}
    doc = orjson.loads(orjson.dumps(bench_document(meta, SCENARIOS)))
    assert doc["version"] == JSON_VERSION
    assert doc["meta"] == meta
    assert set(doc["scenarios"]) == set(SCENARIOS)
    assert {"scenario", "figure", "value", "target", "ok"} <= set(doc["table"][0])
    row = history_row(doc)
    assert row.count("|") == HISTORY_HEADER.count("|")
    assert "01234567" in row and "10,500" in row and "1.31 (6,000 ev/s)" in row


def test_pass_tracker_marks_each_window_once_per_partition() -> None:
    t = PassTracker(size_ms=60_000, lateness_ms=2_000)
    t.see("m", 0, 30_000, now=1.0)  # first window [0, 60 s): partial
    t.see("m", 1, 45_000, now=1.5)
    t.see("m", 0, 61_500, now=2.0)  # past the end, not past end + lateness
    assert t.passes == {}
    t.see("m", 0, 62_000, now=3.0)  # passes [0, 60 s) on partition 0
    t.see("m", 0, 63_000, now=3.5)  # already passed: the first time stays
    t.see("m", 1, 200_000, now=4.0)  # a gap: passes three windows on partition 1 at once
    assert t.passes == {("m", 0, 0): 3.0, ("m", 0, 1): 4.0, ("m", 60_000, 1): 4.0,
                        ("m", 120_000, 1): 4.0}
    assert t.first_window == {"m": 0}
    assert watermark_passes(t.passes, partitions=2) == {("m", 0): 4.0}
    t.see("n", 0, 1_700_000_123_456, now=5.0)  # the worker's own window arithmetic
    assert t.first_window["n"] == window_start(1_700_000_123_456, 60_000)


def test_two_workers_are_compared_with_the_one_worker_run_of_their_pair() -> None:
    from load_tests.bench_worker import paired

    def run(cpu: float, e2e: float) -> dict[str, float]:
        return {"events": 100_000, "worker_cpu_s": cpu, "events_per_cpu_s": round(100_000 / cpu),
                "e2e_s": e2e}

    # The machine slows down between pairs: each pair's ratio is 1.1, 1.0 and 1.2.
    ones = [run(5.0, 10.0), run(6.0, 12.0), run(7.0, 14.0)]
    twos = [run(5.5, 8.0), run(6.0, 10.0), run(8.4, 7.0)]
    scenario = paired(ones, twos)
    assert scenario["pair_ratios"] == [1.1, 1.0, 1.2]
    assert scenario["cpu_per_event_ratio"] == 1.1  # the median pair, the first one
    assert scenario["worker_cpu_s"] == 5.5 and scenario["speedup"] == 1.25
    assert scenario["one"]["worker_cpu_s"] == 5.0
    # Against the median one-worker run (6.0 s), the median two-worker run would say 1.0.
    rows = {r.figure: r.value for r in table_rows({"two_workers": {**scenario,
                                                                   "partitions": 4}})}
    assert rows["each of 3 pairs (the median one above)"] == "1.10 / 1.00 / 1.20"


def test_the_control_compares_a_worker_beside_another_with_the_same_one_worker_run() -> None:
    from load_tests.bench_worker import beside_ratios

    ones = [{"events": 100_000, "worker_cpu_s": c} for c in (5.0, 6.0, 7.0)]
    # Two workers on two streams at once: twice the events, CPU summed over both.
    besides = [{"events": 200_000, "worker_cpu_s": c, "events_per_cpu_s": round(200_000 / c)}
               for c in (10.5, 12.0, 15.4)]
    control = beside_ratios(ones, besides)
    assert control["pair_ratios"] == [1.05, 1.0, 1.1]
    assert control["cpu_per_event_ratio"] == 1.05
    rows = {r.figure: r.value for r in table_rows({"two_workers": {
        "partitions": 4, "cpu_per_event_ratio": 1.2, "beside": control}})}
    assert rows["control: one beside another on its own stream / alone"] == 1.05
    assert rows["each of 3 control pairs (the median one above)"] == "1.05 / 1.00 / 1.10"


def test_the_median_run_is_the_lower_middle_one_with_every_run_listed_in_order() -> None:
    from load_tests.bench_worker import median_run

    runs = [{"events_per_cpu_s": v, "tag": t} for v, t in ((19_000, "a"), (17_500, "b"),
                                                             (21_000, "c"), (18_200, "d"))]
    median = median_run(runs)
    assert median["tag"] == "d"  # 17,500 < 18,200 < 19,000 < 21,000: the lower middle one
    assert median["runs"] == [19_000, 17_500, 21_000, 18_200]  # as they ran
    assert median_run(runs[:3])["tag"] == "a"

