"""How event values are read: numbers, probabilities, class labels, per-class scores.

Shared by the window state, the score histograms and the concept-drift error stream, so a
value means the same everywhere (``1``, ``1.0`` and ``"1"`` are one class; ``True`` is
``"true"``; NaN and infinities are not numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def class_key(value: Any) -> str | None:
    """Normalised class label: ``True -> "true"``, ``1 / 1.0 / "1" -> "1"``, ``None -> None``.

    Examples
    --------
    >>> [class_key(v) for v in (True, 1, 1.0, "1", 0.5, None)]
    ['true', '1', '1', '1', '0.5', None]
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def as_probability(value: Any) -> float | None:
    x = as_number(value)
    return x if x is not None and 0.0 <= x <= 1.0 else None


def argmax(scores: Mapping[Any, Any]) -> str | None:
    """Class with the highest score; ties go to the smallest class key (deterministic)."""
    best: tuple[float, str] | None = None
    for k, v in scores.items():
        x, ck = as_number(v), class_key(k)
        if x is None or ck is None:
            continue
        if best is None or x > best[0] or (x == best[0] and ck < best[1]):
            best = (x, ck)
    return None if best is None else best[1]


def lookup(scores: Mapping[Any, Any], key: str) -> Any:
    if key in scores:
        return scores[key]
    for k, v in scores.items():
        if class_key(k) == key:
            return v
    return None


def parse_number(text: str) -> int | float | None:
    """A CSV cell as a number (int before float), or None if it is not one: the reference
    reader and the backfill reader type their columns with the same rule."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None
