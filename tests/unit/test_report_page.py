"""The report page without a browser: sections, empty notes, no external resources."""

from __future__ import annotations

import re

from stream.report.data import ReportData
from stream.report.page import render_report

T0 = 1_700_000_100_000


def perf(metric: str, family: str = "performance", value: float = 0.8) -> dict[str, object]:
    return {"model_version": "v1", "ws": T0, "family": family, "metric": metric,
            "value": value, "coverage": 0.5, "labelled_count": 5, "sample_size": 10}


def test_empty_data_gives_notes_and_no_figures() -> None:
    page = render_report(ReportData("m", 0, 10**13))
    assert page.count('class="plotly-graph-div"') == 0
    for note in ("no drift rows", "no reference profile", "no labelled performance rows",
                 "no segment drift verdicts", "no fairness rows", "no alert state change"):
        assert note in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert 'id=tw-status' in page


def test_one_figure_per_labelled_metric_counts_left_out_estimate_beside() -> None:
    data = ReportData("m", 0, 10**13, performance=[
        perf("accuracy"), perf("expected_accuracy", "estimate", 0.7), perf("tp"), perf("f1")])
    page = render_report(data)
    assert page.count('class="plotly-graph-div"') == 2
    assert "expected_accuracy (no labels)" in page
    assert "tp with coverage" not in page


def test_text_from_the_store_is_escaped() -> None:
    data = ReportData("<m>", 0, 10**13, alerts=[
        {"t": T0, "rule": "r", "severity": "warning", "state": "firing", "metric": "x",
         "feature": None, "segment": None, "value": 1.0, "threshold": 0.5,
         "message": "<script>alert(1)</script>"}])
    page = render_report(data)
    assert "<script>alert(1)" not in page  # neither in the table nor in the figure's JSON
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "tidewatch report: &lt;m&gt;" in page


def shares(feature: str, values: dict[str, float]) -> list[dict[str, object]]:
    return [{"model_version": "v1", "ws": T0, "feature": feature, "metric": m, "value": v,
             "sample_size": 10} for m, v in values.items()]


def test_distribution_rows_become_bars_beside_the_reference() -> None:
    from stream.report.page import _bins

    numeric = shares("x", {"bin_01": 0.2, "bin_02": 0.5, "bin_03": 0.3, "edge_01": 1.5,
                           "edge_02": 2.25, "reference_bin_01": 0.3,
                           "reference_bin_02": 0.4, "reference_bin_03": 0.3})
    assert _bins(numeric) == (["< 1.5", "[1.5, 2.25)", ">= 2.25"], [0.3, 0.4, 0.3],
                              [0.2, 0.5, 0.3])
    categorical = shares("c", {"category:a": 0.7, "category:(other)": 0.3,
                               "reference_category:a": 0.9,
                               "reference_category:(other)": 0.1})
    assert _bins(categorical) == (["a", "(other)"], [0.9, 0.1], [0.7, 0.3])  # reference order
    page = render_report(ReportData("m", 0, 10**13, distribution=numeric + categorical))
    assert page.count('class="plotly-graph-div"') == 2  # no reference profile needed
    assert "x: latest window beside the reference" in page
