"""What a drift method is: its outcome, its entry (kind, threshold, rule) and a family table.

A family module (:mod:`.drift_pvalue`, :mod:`.drift_distance`) fills one
:class:`MethodTable` with its decorator; :mod:`.drift_tests` looks names up in all of them.
The table is explicit, not a global filled as a side effect of imports, so no module can see
a half-filled registry.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from stream.errors import MetricsError
from stream.metrics.binning import NumericPair, Pair

Kind = Literal["p_value", "distance"]
Rule = Literal["<", "<=", ">=", ">"]


@dataclass(frozen=True, slots=True)
class MethodOutcome:
    """What one test computed: its statistic and, for tests, the p-value (NaN = undefined)."""

    statistic: float
    p_value: float | None = None


Func = Callable[[Pair], MethodOutcome]


@dataclass(frozen=True, slots=True)
class DriftMethod:
    """A registered drift test.

    ``rule`` compares the score (the p-value for ``kind="p_value"``, the statistic for
    ``kind="distance"``) with the threshold: drift when ``score <rule> threshold``.
    ``numeric`` / ``categorical`` say which column kinds it accepts; categorical tests accept
    numerical columns too, each distinct value being a category (Evidently does the same for
    numerical columns with at most 5 distinct values).
    """

    name: str
    title: str
    kind: Kind
    default_threshold: float
    rule: Rule
    numeric: bool
    categorical: bool
    func: Callable[[Pair], MethodOutcome]

    def score(self, outcome: MethodOutcome) -> float:
        """The value the rule compares: the p-value of a test, else the statistic."""
        if self.kind == "p_value":
            return math.nan if outcome.p_value is None else outcome.p_value
        return outcome.statistic

    def is_drift(self, score: float, threshold: float) -> bool | None:
        """Apply the rule; None when the score is NaN (the test is undefined on the data)."""
        if math.isnan(score):
            return None
        if self.rule == "<":
            return score < threshold
        if self.rule == "<=":
            return score <= threshold
        if self.rule == ">=":
            return score >= threshold
        return score > threshold


class MethodTable:
    """The methods of one family by name (and Evidently's aliases), filled by ``register``."""

    def __init__(self) -> None:
        self.methods: dict[str, DriftMethod] = {}
        self.aliases: dict[str, str] = {}

    def register(
        self,
        name: str,
        title: str,
        kind: Kind,
        default_threshold: float,
        rule: Rule,
        *,
        numeric: bool,
        categorical: bool,
        aliases: tuple[str, ...] = (),
    ) -> Callable[[Func], Func]:
        def add(func: Func) -> Func:
            self.methods[name] = DriftMethod(
                name, title, kind, default_threshold, rule, numeric, categorical, func
            )
            for alias in aliases:
                self.aliases[alias] = name
            return func

        return add


@contextmanager
def quiet() -> Iterator[None]:
    """Silence scipy's and numpy's warnings on degenerate input; results carry inf/NaN."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def numeric_pair(pair: Pair) -> NumericPair:
    if not isinstance(pair, NumericPair):
        raise MetricsError("this drift method needs a numerical column")
    return pair


def outcome(statistic: Any, p_value: Any = None) -> MethodOutcome:
    """Coerce scipy's numpy scalars to plain floats."""
    return MethodOutcome(float(statistic), None if p_value is None else float(p_value))


