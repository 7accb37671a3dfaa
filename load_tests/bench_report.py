"""The pure half of ``make bench``: percentiles, window-close latencies from timestamps, the
one table, its JSON and the history row of ``docs/benchmarks.md``. No I/O here, so the unit
tests (``tests/unit/test_bench_report.py``) can check it without a broker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

JSON_VERSION = 1
WindowKey = tuple[str, int]  # (model_id, window_start ms)

# The targets (benchmarks to report against, never timed tests).
TARGET_CPU_100 = 20_000  # events per worker CPU-second, 100-event messages (aim 50,000)
AIM_CPU_100 = 50_000
TARGET_CPU_1 = 4_000  # one-event messages
TARGET_P99_S = 2.0  # window-close latency p99 at a steady 10,000 events/s
TARGET_RATE = 10_000
TARGET_RSS_GROWTH = 1.2  # peak RSS long / short stream


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation between closest ranks.

    The same definition as ``numpy.percentile``'s default ("linear", Hyndman & Fan type 7),
    written out so the report has no numpy dependency and is checked against numpy.

    Parameters
    ----------
    values : sequence of float
        At least one value, in any order.
    q : float
        Percentile in [0, 100].

    Returns
    -------
    float
        The interpolated percentile.

    Examples
    --------
    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([5.0], 99)
    5.0
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    h = (len(ordered) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def latency_summary(latencies: Sequence[float]) -> dict[str, Any]:
    """n, p50, p95, p99 and max in seconds (None when there is nothing to summarise)."""
    if not latencies:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {"n": len(latencies), **{f"p{q}": round(percentile(latencies, q), 3)
                                    for q in (50, 95, 99)},
            "max": round(max(latencies), 3)}


class PassTracker:
    """Notes when each model's watermark passes each window's end on each partition.

    Fed every prediction as the producer hands it over (model, partition, event time, wall
    time); the first event of a model on a partition with a timestamp at or past a window's
    end plus ``lateness_ms`` passes that window there. ``first_window`` keeps each model's
    first window (open before its traffic began, so partial).

    Examples
    --------
    >>> t = PassTracker(size_ms=60_000, lateness_ms=2_000)
    >>> for ts, now in [(30_000, 1.0), (61_000, 2.0), (62_000, 3.0), (125_000, 4.0)]:
    ...     t.see("m", 0, ts, now)
    >>> t.passes
    {('m', 0, 0): 3.0, ('m', 60000, 0): 4.0}
    """

    def __init__(self, size_ms: int, lateness_ms: int) -> None:
        self.size_ms, self.lateness_ms = size_ms, lateness_ms
        self.passes: dict[tuple[str, int, int], float] = {}
        self.first_window: dict[str, int] = {}
        self._next_end: dict[tuple[str, int], int] = {}

    def see(self, model: str, partition: int, ts: int, now: float) -> None:
        start = ts - ts % self.size_ms
        self.first_window.setdefault(model, start)
        end = self._next_end.get((model, partition))
        if end is None:
            self._next_end[(model, partition)] = start + self.size_ms
            return
        # A gap in the traffic can pass several windows at once: each passes now.
        while ts >= end + self.lateness_ms:
            self.passes[(model, end - self.size_ms, partition)] = now
            end += self.size_ms
        self._next_end[(model, partition)] = end


def watermark_passes(per_partition: Mapping[tuple[str, int, int], float],
                     partitions: int) -> dict[WindowKey, float]:
    """When each model's watermark passed each window's end on *every* partition.

    ``per_partition[(model, window_start, p)]`` is the wall time the first event of that
    model with a timestamp at or past the window's end plus the allowed lateness was handed
    to the producer for partition ``p``. A window closes when the slowest partition's
    watermark passes it, so its pass time is the latest of the ``partitions`` times; windows
    not yet passed on every partition are left out.
    """
    seen: dict[WindowKey, list[float]] = {}
    for (model, ws, _p), t in per_partition.items():
        seen.setdefault((model, ws), []).append(t)
    return {key: max(ts) for key, ts in seen.items() if len(ts) == partitions}


def close_times(records: Iterable[tuple[str, int, int, float]]) -> dict[WindowKey, float]:
    """When each window's close rows were all on the results topic.

    ``records`` are ``(model_id, window_start, computed_at, arrival)`` for every results
    record read. The close emits every row of a window with one ``computed_at``; revisions
    come later with a later one. So a window's close is its records with the smallest
    ``computed_at``, and it is queryable when the last of them arrived.
    """
    first: dict[WindowKey, tuple[int, float]] = {}
    for model, ws, computed, arrival in records:
        key = (model, ws)
        known = first.get(key)
        if known is None or computed < known[0] or (computed == known[0] and arrival > known[1]):
            first[key] = (computed, arrival)
    return {key: arrival for key, (_c, arrival) in first.items()}


def close_latencies(passes: Mapping[WindowKey, float],
                    closes: Mapping[WindowKey, float]) -> tuple[list[float], list[WindowKey]]:
    """(latency in seconds of every passed window that closed, passed windows that did not)."""
    latencies, missing = [], []
    for key, passed in sorted(passes.items()):
        if key in closes:
            latencies.append(closes[key] - passed)
        else:
            missing.append(key)
    return latencies, missing


# ---------------------------------------------------------------------------- the table
@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    figure: str
    value: float | str | None
    target: str = ""
    ok: bool | None = None  # None: no target, or not comparable

    def shown(self) -> str:
        return fmt(self.value)

    def verdict(self) -> str:
        return "" if self.ok is None else ("ok" if self.ok else "MISS")


def fmt(value: float | str | None) -> str:
    """Thousands separators for counts and rates, three significant digits below 100."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def ratio_text(worker: float | None, bare: float | None) -> str | None:
    """``worker / bare`` and how many times faster the bare consumer is, e.g. "0.019 (54x)"."""
    if not worker or not bare:
        return None
    return f"{worker / bare:.3f} ({bare / worker:,.0f}x)"


def _backlog_rows(name: str, s: Mapping[str, Any], target: int, aim: int | None) -> list[Row]:
    per_cpu = s.get("events_per_cpu_s")
    bare = s.get("bare", {}).get("orjson", {})
    goal = f">= {target:,}" + (f" (aim {aim:,})" if aim else "")
    return [
        Row(name, "events per worker CPU-second", per_cpu, goal,
            None if per_cpu is None else per_cpu >= target),
        *_each_run(name, s),
        Row(name, "end-to-end events/s", s.get("e2e_events_per_s")),
        Row(name, "bare consumer + orjson: events per CPU-second",
            bare.get("events_per_cpu_s")),
        Row(name, "worker / bare, per CPU-second (headline)",
            ratio_text(per_cpu, bare.get("events_per_cpu_s"))),
        Row(name, "worker / bare, events/s", ratio_text(s.get("e2e_events_per_s"),
                                                        bare.get("events_per_s"))),
        Row(name, "peak RSS MB", s.get("peak_rss_mb")),
        Row(name, "labels joined / sent", None if s.get("labels") is None else
            f"{s.get('labels_joined', 0):,} / {s['labels']:,}"),
    ]


def _each_run(name: str, s: Mapping[str, Any], key: str = "runs", what: str = "runs",
              show: Callable[[Any], str] = fmt) -> list[Row]:
    """Every repeat's figure (``s[key]``) when the scenario ran more than once: runs'
    events per CPU-second, or pairs' ratios (the median one's figures are the others in
    the group)."""
    values = s.get(key) or []
    if len(values) < 2:
        return []
    return [Row(name, f"each of {len(values)} {what} (the median one above)",
                " / ".join(show(v) for v in values))]


def _beside_rows(name: str, beside: Mapping[str, Any] | None) -> list[Row]:
    """The control: a worker beside another on its own stream, over one alone."""
    if not beside:
        return []
    return [Row(name, "control: one beside another on its own stream / alone",
                beside.get("cpu_per_event_ratio")),
            *_each_run(name, beside, "pair_ratios", "control pairs", "{:.2f}".format)]


def _pair(lat: Mapping[str, Any]) -> str | None:
    return None if lat.get("p50") is None else f"{lat['p50']:.2f} / {lat['max']:.2f}"


def table_rows(scenarios: Mapping[str, Any]) -> list[Row]:
    """The rows of the one table, from the scenario figures (absent scenarios say so)."""
    rows: list[Row] = []
    if (s := scenarios.get("backlog_100")) is not None:
        rows += _backlog_rows(f"{s['batch_size']}-event msgs", s, TARGET_CPU_100, AIM_CPU_100)
    if (s := scenarios.get("backlog_1")) is not None:
        rows += _backlog_rows("1-event msgs", s, TARGET_CPU_1, None)
    if (s := scenarios.get("two_workers")) is not None:
        name = f"2 workers, {s['partitions']} parts"
        cpu = s.get("cpu_per_event_ratio")
        rows += [
            Row(name, "CPU per event, two workers / one", cpu, "<= 1",
                None if cpu is None else cpu <= 1.0),
            Row(name, "wall-clock speed-up, one's time / two's", s.get("speedup")),
            *_each_run(name, s, "pair_ratios", "pairs", "{:.2f}".format),
            *_beside_rows(name, s.get("beside")),
            Row(name, "events per CPU-second (both)", s.get("events_per_cpu_s")),
            *_each_run(name, s),
            Row(name, "peak RSS MB (larger worker)", s.get("peak_rss_mb")),
            Row(name, "labels joined / sent", None if s.get("labels") is None else
                f"{s.get('labels_joined', 0):,} / {s['labels']:,}"),
        ]
    if (s := scenarios.get("steady")) is not None:
        name = f"steady {s['rate']:,.0f} ev/s"
        lat = s.get("latency_s", {})
        p99 = lat.get("p99")
        at_target = s["rate"] >= TARGET_RATE
        shown = (None if p99 is None else
                 f"{lat['p50']:.2f} / {lat['p95']:.2f} / {p99:.2f}")
        rows += [
            Row(name, "window-close latency s, p50 / p95 / p99", shown,
                f"p99 < {TARGET_P99_S:g} at {TARGET_RATE:,} ev/s",
                None if p99 is None or s.get("missing") else
                (p99 < TARGET_P99_S if at_target else None)),
            Row(name, "windows closed / passed by the watermark",
                f"{lat.get('n', 0)} / {lat.get('n', 0) + s.get('missing', 0)}"),
            Row(name, "each model's first (partial) window, p50 / max s", _pair(
                s.get("first_window_latency_s", {}))),
            Row(name, "events not yet consumed when the traffic stopped",
                s.get("behind_at_end"), "< 2 s of traffic (steady)",
                None if s.get("behind_at_end") is None else
                s["behind_at_end"] < 2 * s["rate"]),
            Row(name, "events per worker CPU-second", s.get("events_per_cpu_s")),
            Row(name, "peak RSS MB", s.get("peak_rss_mb")),
        ]
    s = scenarios.get("rss")
    if s is None:
        rows.append(Row("peak RSS vs length", "long / short stream", "not run (make "
                        "bench-full)", f"<= {TARGET_RSS_GROWTH:g}"))
    else:
        growth = s.get("growth")
        rows.append(Row(f"peak RSS {s['short']['events']:,} vs {s['long']['events']:,} ev",
                        "peak RSS long / short", growth, f"<= {TARGET_RSS_GROWTH:g}",
                        None if growth is None else growth <= TARGET_RSS_GROWTH))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width text table; the scenario is written once per group."""
    head = ("scenario", "figure", "value", "target", "")
    body = []
    last = None
    for r in rows:
        body.append((r.scenario if r.scenario != last else "", r.figure, r.shown(),
                     r.target, r.verdict()))
        last = r.scenario
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(5)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i == 2 else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *(line(b) for b in body)])


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table in Markdown, for the README's "Measured" section."""
    out = ["| scenario | figure | value | target | |", "|---|---|--:|---|---|"]
    last = None
    for r in rows:
        out.append(f"| {r.scenario if r.scenario != last else ''} | {r.figure} | {r.shown()} "
                   f"| {r.target} | {r.verdict()} |")
        last = r.scenario
    return "\n".join(out)


def bench_document(meta: Mapping[str, Any], scenarios: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON written beside the table: run facts, raw figures per scenario, the rows."""
    return {"version": JSON_VERSION, "meta": dict(meta), "scenarios": dict(scenarios),
            "table": [asdict(r) for r in table_rows(scenarios)]}


HISTORY_HEADER = ("| date | commit | 100-ev ev/CPU-s | 1-ev ev/CPU-s | worker/bare CPU | "
                  "2 workers CPU/ev ratio | 2 workers speed-up | close p99 s (rate) | "
                  "peak RSS MB | RSS long/short |")


def history_row(doc: Mapping[str, Any]) -> str:
    """One dated line of the history table in ``docs/benchmarks.md``."""
    meta, s = doc["meta"], doc["scenarios"]
    b100, b1 = s.get("backlog_100", {}), s.get("backlog_1", {})
    two, steady, rss = s.get("two_workers", {}), s.get("steady", {}), s.get("rss", {})
    bare = b100.get("bare", {}).get("orjson", {}).get("events_per_cpu_s")
    p99 = steady.get("latency_s", {}).get("p99")
    cells = [
        meta.get("date", ""), meta.get("commit", "")[:8],
        fmt(b100.get("events_per_cpu_s")), fmt(b1.get("events_per_cpu_s")),
        ratio_text(b100.get("events_per_cpu_s"), bare) or "n/a",
        fmt(two.get("cpu_per_event_ratio")), fmt(two.get("speedup")),
        "n/a" if p99 is None else f"{p99:.2f} ({steady['rate']:,.0f} ev/s)",
        fmt(b100.get("peak_rss_mb")), fmt(rss.get("growth")),
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"
