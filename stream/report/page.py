"""The report page: plotly figures in one HTML file, plotly.js inlined (opens offline).

A page script checks, after load, that every figure drew (an SVG with at least one trace)
and writes the outcome into ``#tw-status`` (``ok <n>`` or the errors), so a headless browser
test (and a reader) can tell a broken page from an empty one.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go
from plotly.io import to_html
from plotly.offline import get_plotlyjs

from stream.metrics.distribution import OTHER
from stream.metrics.reference import ReferenceProfile
from stream.report.data import ReportData

_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2em} .grid{display:flex;flex-wrap:wrap;gap:8px}
.grid>div{flex:1 1 560px} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left} .note{color:#666}
"""
#: Confusion counts: in the store, not worth a plot each.
COUNTS: Final = frozenset({"tp", "fp", "tn", "fn"})
_CHECK: Final = """
window.__twErrors = [];
window.addEventListener('error', e => window.__twErrors.push(String(e.message)));
window.addEventListener('load', () => setTimeout(() => {
  const divs = document.querySelectorAll('.plotly-graph-div');
  const bad = [];
  divs.forEach(d => {
    const drawn = d.querySelector('svg.main-svg') !== null;
    if (!drawn || !d.data || d.data.length === 0) bad.push(d.id);
  });
  const status = document.getElementById('tw-status');
  const errs = window.__twErrors.concat(bad.map(id => 'not drawn: ' + id));
  status.textContent = errs.length ? 'errors ' + errs.join('; ') : 'ok ' + divs.length;
  status.dataset.plots = String(divs.length);
}, 300));
"""


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _when(rows: Iterable[Mapping[str, Any]], key: str = "ws") -> list[str]:
    return [_time(int(r[key])) for r in rows]


def _verdict(drifted: bool | None) -> str:
    return "no verdict" if drifted is None else "drift" if drifted else "no drift"


def _fig(fig: go.Figure, title: str, height: int = 300) -> str:
    fig.update_layout(title=title, height=height, margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      template="plotly_white", legend={"orientation": "h"})
    return str(to_html(fig, include_plotlyjs=False, full_html=False,
                       config={"displaylogo": False}))


def drift_figures(data: ReportData) -> list[str]:
    """Per feature: what the verdict compares (adjusted p-value, or the statistic) against
    the threshold, window by window; drifted windows marked."""
    by_feature: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in data.drift:
        by_feature[row["feature"]].append(row)
    out = []
    for feature, rows in sorted(by_feature.items()):
        fig = go.Figure()
        uses_p = any(r["p_value_adjusted"] is not None for r in rows)
        name = "adjusted p-value (drift below threshold)" if uses_p else "statistic (drift above)"
        for version in sorted({r["model_version"] for r in rows}):
            part = [r for r in rows if r["model_version"] == version]
            y = [r["p_value_adjusted"] if uses_p else r["statistic"] for r in part]
            fig.add_trace(go.Scatter(
                x=_when(part), y=y, mode="lines+markers", name=f"{version or '-'} {name}",
                marker={"color": ["#d62728" if r["drifted"] else
                                  "#999" if r["drifted"] is None else "#2ca02c" for r in part],
                        "size": 8},
                customdata=[[r["method"], r["statistic"], r["current_size"]] for r in part],
                hovertemplate="%{x}<br>method %{customdata[0]}<br>statistic %{customdata[1]}"
                              "<br>n %{customdata[2]}<extra></extra>"))
        fig.add_trace(go.Scatter(x=_when(rows), y=[r["threshold"] for r in rows], mode="lines",
                                 name="threshold", line={"dash": "dash", "color": "#444"}))
        out.append(_fig(fig, f"{feature}: {rows[-1]['method']}"))
    return out


def _bins(rows: list[dict[str, Any]]) -> tuple[list[str], list[float], list[float]]:
    """Bin labels, reference shares and window shares of one feature's distribution rows."""
    values = {r["metric"]: float(r["value"]) for r in rows}
    if any(m.startswith("bin_") for m in values):
        count = sum(1 for m in values if m.startswith("bin_"))
        edges = [values[f"edge_{i:02d}"] for i in range(1, count)]
        labels = [f"< {edges[0]:.4g}"] if edges else ["all"]
        labels += [f"[{a:.4g}, {b:.4g})" for a, b in pairwise(edges)]
        labels += [f">= {edges[-1]:.4g}"] if edges else []
        keys = [f"{i:02d}" for i in range(1, count + 1)]
        return (labels, [values.get(f"reference_bin_{k}", 0.0) for k in keys],
                [values[f"bin_{k}"] for k in keys])
    cats = sorted((m.split(":", 1)[1] for m in values if m.startswith("category:")),
                  key=lambda c: (c == OTHER, -values.get(f"reference_category:{c}", 0.0), c))
    return (cats, [values.get(f"reference_category:{c}", 0.0) for c in cats],
            [values[f"category:{c}"] for c in cats])


def reference_figures(data: ReportData, reference: ReferenceProfile | None) -> list[str]:
    """Each feature's latest window beside the reference, on the reference's bins (the
    ``distribution`` rows the worker wrote); without them, the reference profile's own
    histogram. Titled with the latest window's verdict."""
    latest: dict[str, dict[str, Any]] = {}
    for row in data.drift:
        latest[row["feature"]] = row  # rows come sorted by window start
    shares: dict[str, list[dict[str, Any]]] = defaultdict(list)
    version = max((r["model_version"] for r in data.distribution), default="")
    for row in data.distribution:
        if row["model_version"] == version:
            shares[row["feature"]].append(row)
    columns = dict(reference.columns) if reference is not None else {}
    out = []
    for name in sorted(set(columns) | set(shares)):
        column = columns.get(name)
        last = latest.get(name)
        verdict = "no window" if last is None else (
            f"latest window {_time(int(last['ws']))}: {last['method']} "
            f"{last['statistic']!s:.6}, {_verdict(last['drifted'])} (n={last['current_size']})")
        fig = go.Figure()
        if name in shares:
            labels, ref_shares, window_shares = _bins(shares[name])
            when = _time(int(shares[name][0]["ws"]))
            fig.add_trace(go.Bar(x=labels, y=ref_shares, name="reference",
                                 marker={"color": "#9ecae1"}))
            fig.add_trace(go.Bar(x=labels, y=window_shares, name=f"window {when}",
                                 marker={"color": "#d62728" if last and last["drifted"]
                                         else "#3182bd"}))
            fig.update_layout(barmode="group", yaxis={"title": "share"})
            out.append(_fig(fig, f"{name}: latest window beside the reference — {verdict}",
                            300))
            continue
        if column is None:
            continue
        if column.kind == "numeric" and len(column.sample):
            fig.add_trace(go.Histogram(x=column.sample.tolist(), name="reference",
                                       histnorm="probability"))
        elif column.counts:
            total = sum(column.counts.values()) or 1
            keys = sorted(column.counts)
            fig.add_trace(go.Bar(x=keys, y=[column.counts[k] / total for k in keys],
                                 name="reference"))
        else:
            continue
        out.append(_fig(fig, f"{name} (reference, {column.count} rows) — {verdict}", 280))
    return out


def performance_figures(data: ReportData) -> list[str]:
    """Each labelled metric beside its label-free estimate, with label coverage."""
    rows = data.performance
    measured = sorted({r["metric"] for r in rows if r["family"] == "performance"} - COUNTS)
    out = []
    for metric in measured:
        fig = go.Figure()
        real = [r for r in rows if r["family"] == "performance" and r["metric"] == metric]
        est = [r for r in rows if r["family"] == "estimate" and r["metric"] == f"expected_{metric}"]
        fig.add_trace(go.Scatter(x=_when(real), y=[r["value"] for r in real],
                                 mode="lines+markers", name=metric))
        if est:
            fig.add_trace(go.Scatter(x=_when(est), y=[r["value"] for r in est],
                                     mode="lines+markers", name=f"expected_{metric} (no labels)",
                                     line={"dash": "dot"}))
        fig.add_trace(go.Bar(x=_when(real), y=[r["coverage"] for r in real], name="coverage",
                             yaxis="y2", opacity=0.25))
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "range": [0, 1],
                                  "title": "coverage"})
        out.append(_fig(fig, f"{metric} with coverage and the label-free estimate"))
    return out


def segment_figure(data: ReportData) -> list[str]:
    if not data.segments:
        return []
    rows = data.segments[:30]
    fig = go.Figure(go.Bar(x=[r["drift_share"] for r in rows][::-1],
                           y=[r["segment"] for r in rows][::-1], orientation="h",
                           customdata=[[r["drifted_verdicts"], r["verdicts"]] for r in rows][::-1],
                           hovertemplate="%{y}: %{customdata[0]} of %{customdata[1]} verdicts"
                                         "<extra></extra>"))
    return [_fig(fig, "segments ranked by share of drifted verdicts", 120 + 22 * len(rows))]


def fairness_figures(data: ReportData) -> list[str]:
    if not data.fairness:
        return []
    fig = go.Figure()
    for key in sorted({(r["metric"], r["feature"]) for r in data.fairness}):
        part = [r for r in data.fairness if (r["metric"], r["feature"]) == key]
        fig.add_trace(go.Scatter(x=_when(part), y=[r["value"] for r in part],
                                 mode="lines+markers", name=f"{key[0]} ({key[1]})"))
    return [_fig(fig, "fairness gaps across groups of the protected attribute")]


def alert_figure(data: ReportData) -> list[str]:
    if not data.alerts:
        return []
    colours = {"firing": "#d62728", "resolved": "#2ca02c"}
    fig = go.Figure()
    for state in ("firing", "resolved"):
        part = [a for a in data.alerts if a["state"] == state]
        if part:
            fig.add_trace(go.Scatter(
                x=_when(part, "t"), y=[a["rule"] for a in part], mode="markers", name=state,
                marker={"color": colours[state], "size": 11,
                        "symbol": "triangle-up" if state == "firing" else "circle"},
                text=[a["message"] for a in part], hovertemplate="%{x}<br>%{text}<extra></extra>"))
    return [_fig(fig, "alert timeline", 160 + 30 * len({a["rule"] for a in data.alerts}))]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f"<td>{html.escape(_time(int(r[c])) if c in ('t', 'ws') else str(r[c]))}</td>"
        for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(title: str, figures: list[str], empty: str, extra: str = "") -> str:
    inner = "".join(f"<div>{f}</div>" for f in figures) if figures else (
        f"<p class=note>{html.escape(empty)}</p>")
    return f"<h2>{html.escape(title)}</h2><div class=grid>{inner}</div>{extra}"


def render_report(data: ReportData, reference: ReferenceProfile | None = None) -> str:
    """The whole page as one string (plotly.js inline: ~4.7 MB)."""
    alerts_table = _table(data.alerts[-50:], ["t", "state", "severity", "rule", "message"]) \
        if data.alerts else ""
    sections = [
        _section("Drift per feature (segment all)", drift_figures(data),
                 "no drift rows: no reference, or no window in the range"),
        _section("The latest window beside the reference, per feature",
                 reference_figures(data, reference),
                 "no reference profile for this model, and no distribution rows"),
        _section("Performance, coverage and the label-free estimate",
                 performance_figures(data), "no labelled performance rows in the range"),
        _section("Segments ranked by drift", segment_figure(data),
                 "no segment drift verdicts (metrics.segments empty, or too few rows)"),
        _section("Fairness", fairness_figures(data),
                 "no fairness rows (no protected_attribute configured for this model)"),
        _section("Alerts", alert_figure(data), "no alert state change in the range",
                 alerts_table),
    ]
    title = f"tidewatch report: {data.model_id}"
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style><script>{_CHECK}</script>"
            f"<script>{get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=note>windows starting "
            f"{_time(data.start)} to {_time(data.end)} UTC; generated "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC. <span id=tw-status>pending</span></p>"
            + "".join(sections) + "</body></html>")


def write_report(path: str | Path, data: ReportData,
                 reference: ReferenceProfile | None = None) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data, reference), encoding="utf-8")
    return out
