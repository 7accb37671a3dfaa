"""The drift tests, registered by name, each a small function with a default threshold.

Each test takes a :class:`~stream.metrics.binning.NumericPair` or
:class:`~stream.metrics.binning.CategoricalPair` and returns a
:class:`~stream.metrics.drift_method.MethodOutcome`; its
:class:`~stream.metrics.drift_method.DriftMethod` entry says which column kinds it accepts,
whether its score is a p-value or a distance, the default threshold and the drift rule. The
tests live by family: :mod:`.drift_pvalue` (a p-value) and :mod:`.drift_distance` (a
distance). Names, thresholds, rules and computations follow Evidently's
``legacy/calculations/stattests/`` so that the same data gets the same verdict; where they
differ on purpose the function's docstring says so, and ``docs/drift.md`` lists every method.
"""

from __future__ import annotations

from typing import Final

from stream.errors import MetricsError
from stream.metrics.drift_distance import DISTANCES
from stream.metrics.drift_method import DriftMethod
from stream.metrics.drift_pvalue import TESTS

_METHODS: Final = {**TESTS.methods, **DISTANCES.methods}
_ALIASES: Final = {**TESTS.aliases, **DISTANCES.aliases}


def available_methods() -> list[str]:
    """Names of the registered drift methods, sorted.

    Examples
    --------
    >>> "ks" in available_methods() and "psi" in available_methods()
    True
    """
    return sorted(_METHODS)


def get_method(name: str) -> DriftMethod:
    """The registered method ``name`` (or one of its Evidently aliases: ed, mannw, TVD, es).

    Raises
    ------
    MetricsError
        If no method has that name; the message lists the known names.

    Examples
    --------
    >>> get_method("TVD").name, get_method("psi").kind
    ('tvd', 'distance')
    """
    method = _METHODS.get(_ALIASES.get(name, name))
    if method is None:
        raise MetricsError(
            f"unknown drift method {name!r}; known: {', '.join(available_methods())}"
        )
    return method
