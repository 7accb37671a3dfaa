"""The results topic's records: one per window, rows back as they went in."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import orjson

from stream.merge.sink import decode_results, encode_results
from stream.results import DriftRow, MetricRow, WindowResults


def window() -> WindowResults:
    drift = DriftRow("m", "v1", "all", 0, 60_000, "x", "chisquare", math.inf, 0.0, 0.0, 0.05,
                     True, 100, 50, 0, 7)
    metric = MetricRow("m", "v1", "country=DE", 0, 60_000, "performance", "accuracy", "",
                       0.75, 40, 40, 0.8, 40, 7)
    return WindowResults((drift,), (metric,))


def test_a_window_is_one_record_and_decodes_to_its_rows() -> None:
    records = list(encode_results(window()))
    assert len(records) == 1
    key, value = records[0]
    assert orjson.loads(key) == ["m", "v1", 0]
    assert decode_results([value]) == window()  # +inf survives JSON


def test_records_of_one_row_each_as_earlier_versions_wrote_are_read() -> None:
    [(_, value)] = encode_results(window())
    per_row = [orjson.dumps(doc) for doc in orjson.loads(value)]
    assert decode_results(per_row) == window()


def test_a_window_without_rows_sends_nothing() -> None:
    assert list(encode_results(WindowResults((), ()))) == []


def test_a_revised_metric_row_is_replace_of_those_three_fields() -> None:
    """``MetricRow.revised`` names every field positionally: a field added or reordered
    without it would shift values silently."""
    row = MetricRow("m", "v2", "country=DE", 60_000, 120_000, "performance", "accuracy", "",
                    0.75, 400, 120, 0.3, 2, 1_700_000_000_000, "why")
    assert row.revised(5, 7, None) == replace(row, revision=5, labelled_count=7, coverage=None)
    assert {f.name for f in fields(MetricRow)} == set(row.as_dict())
