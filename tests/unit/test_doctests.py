"""Every docstring example in ``stream`` runs, and gives what it shows (as River does).

One collector for the whole package: a module added later is checked without being listed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import stream

MODULES = sorted(m.name for m in pkgutil.walk_packages(stream.__path__, "stream."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(name: str) -> int:
    module = importlib.import_module(name)
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(module))


WITH_EXAMPLES = [name for name in MODULES if _examples(name)]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (above)"


def test_the_collector_finds_the_statistics() -> None:
    """Guards the guard: an empty or misdirected walk would pass every test above."""
    assert "stream.runtime.app" in MODULES
    assert {"stream.metrics.drift", "stream.metrics.window", "stream.metrics.estimate"} <= set(
        WITH_EXAMPLES
    )
