"""Compute the stream's rows from files and write them to the configured store.

The rows come from :func:`stream.merge.offline.offline_results`, the reference computation the
topology tests hold the stream to (same segment routing, caps, and stage 2's
``evaluate_closed_window``), so a backfilled window equals the streamed one for the same
events. The revision of a row is, as in the stream, the window's labelled count: backfilling
a window again with more labels replaces the earlier rows in the ``*_latest`` views.

Limit: ``offline_results`` groups every event in memory before it evaluates (labels may come
in any file and any order), so a backfill holds all the events it reads; split a long history
into runs of a day or less (docs/backfill.md gives the figures).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.backfill.readers import Format, Tally, read_events
from stream.config import Settings
from stream.errors import StoreError
from stream.events import EventKind
from stream.merge.offline import offline_results
from stream.merge.stage import References
from stream.results import DriftRow, MetricRow, WindowResults
from stream.store import Store

WRITE_CHUNK_ROWS = 5_000


@dataclass(slots=True)
class BackfillSummary:
    """What one backfill read, rejected, computed and wrote."""

    tally: Tally = field(default_factory=Tally)
    windows: int = 0
    drift_rows: int = 0
    metric_rows: int = 0
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        return self.drift_rows + self.metric_rows

    def lines(self) -> list[str]:
        """The text ``tidewatch backfill`` prints."""
        t = self.tally
        out = [f"read: {t.valid['prediction']} predictions, {t.valid['label']} labels valid; "
               f"{sum(t.rejected.values())} rejected"]
        out += [f"  rejected {kind} {reason}: {n}" for (kind, reason), n
                in sorted(t.rejected.items())]
        out += [f"  e.g. {example}" for example in t.examples]
        out.append(f"windows: {self.windows} (model, version, window start); rows written: "
                   f"{self.rows_written} ({self.drift_rows} drift, {self.metric_rows} metrics) "
                   f"in {self.seconds:.1f} s")
        return out


def read_all(files: Sequence[str | Path], kind: EventKind, tally: Tally,
             fmt: Format = "auto") -> Iterator[dict[str, Any]]:
    for path in files:
        yield from read_events(path, kind, tally, fmt)


def compute(settings: Settings, predictions: Sequence[str | Path], labels: Sequence[str | Path],
            references: References, fmt: Format = "auto",
            computed_at: int | None = None) -> tuple[WindowResults, BackfillSummary]:
    """The rows of every window in the files, and the summary (nothing written)."""
    started = time.monotonic()
    summary = BackfillSummary()
    label_events = list(read_all(labels, "label", summary.tally, fmt))
    now = int(time.time() * 1000) if computed_at is None else computed_at
    results = offline_results(read_all(predictions, "prediction", summary.tally, fmt),
                              label_events, settings, references, computed_at=now)
    rows: list[DriftRow | MetricRow] = [*results.drift, *results.metrics]
    summary.windows = len({(r.model_id, r.model_version, r.window_start) for r in rows})
    summary.drift_rows, summary.metric_rows = len(results.drift), len(results.metrics)
    summary.seconds = time.monotonic() - started
    return results, summary


def chunks(results: WindowResults, size: int = WRITE_CHUNK_ROWS) -> Iterator[WindowResults]:
    """Consecutive parts of at most ``size`` rows each (bounded inserts)."""
    for start in range(0, len(results.drift), size):
        yield WindowResults(drift=results.drift[start:start + size])
    for start in range(0, len(results.metrics), size):
        yield WindowResults(metrics=results.metrics[start:start + size])


def backfill(settings: Settings, store: Store, predictions: Sequence[str | Path],
             labels: Sequence[str | Path], references: References, fmt: Format = "auto",
             computed_at: int | None = None) -> BackfillSummary:
    """Read, compute, migrate the store if needed, write every row, flush; the summary."""
    if settings.store.kind == "none":
        raise StoreError("store.kind is none: there is no store to backfill into")
    results, summary = compute(settings, predictions, labels, references, fmt, computed_at)
    started = time.monotonic()
    store.migrate()
    for part in chunks(results):
        store.write(part)
    store.flush()
    summary.seconds += time.monotonic() - started
    return summary
