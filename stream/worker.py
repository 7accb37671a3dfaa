"""Start-up of one worker process: create topics, build the app, run until SIGTERM."""

from __future__ import annotations

import logging

from faust.worker import Worker

from stream.app import create_app
from stream.config import Settings
from stream.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    """Run the worker in this process; returns the exit code when it stops.

    Topics are created (or checked for co-partitioning) before Faust starts, because Faust
    creates only its internal topics and a wrong partition count would break the join.
    """
    counts = ensure_topics(settings)
    log.info("topics ready: %s", counts)
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
