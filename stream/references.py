"""Reference profiles for stage 2: built once per model from the configured file, then reused.

Every worker reads the same file (``metrics.models.<id>.reference_path``), so every worker that
finalises a window of that model compares it with the same reference. A model without a
reference gets no drift rows, and still its quality, service and performance figures.
"""

from __future__ import annotations

import logging

from stream.config import MetricsSettings
from stream.metrics.reference import ReferenceProfile

log = logging.getLogger(__name__)


class FileReferences:
    """Loads ``reference_path`` of a model on first use and keeps the profile."""

    def __init__(self, settings: MetricsSettings) -> None:
        self._settings = settings
        self._cache: dict[str, ReferenceProfile | None] = {}

    def get(self, model_id: str, model_version: str) -> ReferenceProfile | None:
        if model_id not in self._cache:
            model = self._settings.model(model_id)
            profile = None
            if model.reference_path is not None:
                profile = ReferenceProfile.from_file(model.reference_path, model)
                log.info("reference for %s: %d rows from %s", model_id, profile.rows,
                         model.reference_path)
            self._cache[model_id] = profile
        return self._cache[model_id]

    def put(self, model_id: str, profile: ReferenceProfile) -> None:
        """Use ``profile`` for ``model_id`` from now on (e.g. in tests)."""
        self._cache[model_id] = profile
