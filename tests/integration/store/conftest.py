"""An embedded (chDB) store in a fresh folder per test, migrated, plus row builders.

chDB holds one folder per process at a time, so each fixture closes its store before the
next test opens another; never keep two stores open in one test process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.config import StoreSettings
from stream.store.embedded import EmbeddedStore


@pytest.fixture
def open_embedded(tmp_path: Path) -> Iterator[Callable[..., EmbeddedStore]]:
    """Open (and at teardown close) embedded stores in ``tmp_path``, one at a time."""
    opened: list[EmbeddedStore] = []

    def _open(path: Path | None = None, **settings: Any) -> EmbeddedStore:
        store = EmbeddedStore(StoreSettings(path=path or tmp_path / "chdb", **settings))
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_embedded: Callable[..., EmbeddedStore]) -> EmbeddedStore:
    store = open_embedded()
    store.migrate()
    return store
