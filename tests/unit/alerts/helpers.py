"""Window rows as stage 2 would write them, for evaluator tests."""

from __future__ import annotations

from stream.results import DriftRow, MetricRow, WindowResults

W = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % W


def window(i: int, *, accuracy: float | None = 1.0, labelled: int = 600, count: int = 600,
           drifted: dict[str, float] | None = None, revision: int | None = None,
           final: bool = True, model: str = "m", segments: dict[str, float] | None = None,
           ) -> WindowResults:
    """Rows of window ``i``: performance (optionally per segment), volume and drift of x1..x3
    (``drifted`` maps a feature to its Wasserstein statistic; threshold 0.1)."""
    start, end = T0 + i * W, T0 + (i + 1) * W
    rev = labelled if revision is None else revision
    cov = labelled / count if count else None

    def m(family: str, metric: str, value: float | None, seg: str = "all",
          size: int = count, r: int = 0) -> MetricRow:
        return MetricRow(model, "v1", seg, start, end, family, metric, "", value,  # type: ignore[arg-type]
                         size, labelled, cov, r, start)

    metrics = []
    if accuracy is not None:
        metrics.append(m("performance", "accuracy", accuracy, size=labelled, r=rev))
    for seg, acc in (segments or {}).items():
        metrics.append(m("performance", "accuracy", acc, seg, size=labelled // 2, r=rev))
    drift: list[DriftRow] = []
    if final:
        metrics.append(m("service", "count", float(count)))
        metrics.append(m("quality", "row_count", float(count)))
        stats = {"x1": 0.02, "x2": 0.03, "x3": 0.01, **(drifted or {})}
        verdicts = [s >= 0.1 for s in stats.values()]
        share = sum(verdicts) / len(verdicts)
        metrics.append(m("drift", "dataset_drift_share", share))
        metrics.append(m("drift", "dataset_drift", float(share >= 0.5)))
        for name, s in stats.items():
            drift.append(DriftRow(model, "v1", "all", start, end, name, "wasserstein", s, None,
                                  None, 0.1, s >= 0.1, 3000, count, 0, start))
        drift.append(DriftRow(model, "v1", "all", start, end, "__prediction__",
                              "jensenshannon", 0.01, None, None, 0.1, False, 3000, count, 0,
                              start))
    return WindowResults(tuple(drift), tuple(metrics))
