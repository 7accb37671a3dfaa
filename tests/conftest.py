"""Shared fixtures. Integration tests read the broker address that `make test` exports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def bootstrap() -> str:
    """The local Kafka broker started by `tools/kafka/local_kafka.py run` (make test)."""
    address = os.environ.get("TIDEWATCH_KAFKA__BOOTSTRAP")
    if not address:
        pytest.skip("needs the local Kafka broker: run through `make test` "
                    "(tools/kafka/local_kafka.py run -- pytest ...)")
    return address
