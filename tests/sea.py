"""SEA concepts (Street and Kim, 2001) as prediction and label events, for alert tests.

Three features uniform on [0, 10]; the true class is ``x1 + x2 <= theta``; x3 is noise. The
model always predicts with theta = 8, so on the first concept it is right (up to label
noise). Moving the true theta to 9 is a pure concept change: inputs keep their distribution,
predictions too, and accuracy falls by P(8 < x1 + x2 <= 9) = 0.085. A covariate shift adds 3
to x1 and x2 (the model stays right: the concept is unchanged).
"""

from __future__ import annotations

import random
from typing import Any

WINDOW_MS = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % WINDOW_MS


def sea_events(
    model: str, windows: range, per_window: int, seed: int, *,
    concept: tuple[int, int] | None = None, shift: tuple[int, int] | None = None,
    noise: float = 0.0, start: int = T0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Predictions and labels of ``windows``; ``concept`` and ``shift`` are event-time
    spans ``[from, to)`` in ms (absolute) where theta is 9 or x1, x2 are shifted."""
    rng = random.Random(f"{model}-{seed}-{windows.start}")
    preds: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for w in windows:
        for i in range(per_window):
            ts = start + w * WINDOW_MS + i * WINDOW_MS // per_window
            x1, x2, x3 = (rng.uniform(0, 10) for _ in range(3))
            if shift and shift[0] <= ts < shift[1]:
                x1, x2 = x1 + 3, x2 + 3
            theta = 9.0 if concept and concept[0] <= ts < concept[1] else 8.0
            y = int(x1 + x2 <= theta)
            if noise and rng.random() < noise:
                y = 1 - y
            rid = f"{model}-{seed}-{w}-{i}"
            preds.append({"request_id": rid, "model_id": model, "model_version": "v1",
                          "timestamp": ts, "prediction": int(x1 + x2 <= 8.0),
                          "features": {"x1": round(x1, 4), "x2": round(x2, 4),
                                       "x3": round(x3, 4)}})
            labels.append({"request_id": rid, "model_id": model, "timestamp": ts + 1,
                           "label": y})
    return preds, labels


def reference_events(model: str, n: int, seed: int, noise: float = 0.0) -> list[dict[str, Any]]:
    """Stationary labelled events (``label`` inside the event), as a reference file holds."""
    preds, labels = sea_events(model, range(1), n, seed, noise=noise, start=T0 - WINDOW_MS)
    return [{**p, "label": lab["label"]} for p, lab in zip(preds, labels, strict=True)]
