"""Start-up of one worker process: topics, store, references, the app; run until SIGTERM."""

from __future__ import annotations

import gc
import logging
from typing import Any

from faust.worker import Worker

from stream.config import Settings
from stream.errors import ConfigError
from stream.merge.references import TopicReferences
from stream.runtime.app import create_app
from stream.runtime.contiguity import BrokerReader
from stream.runtime.shutdown import ShutdownWatchdog
from stream.store import Store, open_store
from stream.topics import confluent_config, ensure_changelogs, ensure_topics

log = logging.getLogger(__name__)


class MonitorWorker(Worker):
    """Faust's worker, with a bound on its stop (see :mod:`stream.runtime.shutdown`).

    Every stop passes through ``on_stop``: SIGTERM, SIGINT, and an agent's crash, which stops
    the worker from within (``CRASH`` in :mod:`stream.runtime.app`).
    """

    def __init__(self, *args: Any, watchdog: ShutdownWatchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = watchdog

    async def on_stop(self) -> None:
        self.watchdog.arm("worker stopping")
        await super().on_stop()


def open_results_store(settings: Settings) -> Store | None:
    """The configured store, migrated; None when results only go to the results topic."""
    if settings.store.kind == "none":
        return None
    store = open_store(settings)
    applied = store.migrate()
    if applied:
        log.info("store migrations applied: %s", ", ".join(applied))
    return store


#: Allocations of container objects between young-generation collections (CPython: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Make Python's cyclic garbage collector cheap for a long-running stream worker.

    Measured on ``make bench``'s 150k-event backlog (each collection timed with
    ``gc.callbacks``): collections took 1.8 of the worker's 12.0 CPU-seconds after the
    partitions were assigned (15%), mostly full collections walking the objects start-up
    made (numpy, scipy, Faust: hundreds of thousands) again and again. ``gc.freeze`` moves
    those to a generation that is never collected (they live as long as the process
    anyway); a higher young threshold runs the young collection every 50,000 allocations
    instead of 700 (the stream's events and state are rarely in reference cycles, so little
    waits longer to be freed). Together: 0.05 CPU-seconds of collections; either alone left
    ~0.6 s (docs/benchmarks.md)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    """Run the worker in this process; returns the exit code when it stops.

    Topics are created (or checked for co-partitioning) before Faust starts, because Faust
    creates only its internal topics and a wrong partition count would break the join.
    """
    counts = ensure_topics(settings)
    sources = counts[settings.topics.predictions]
    if sources != settings.topics.partitions:
        raise ConfigError(
            f"topic {settings.topics.predictions!r} has {sources} partitions but "
            f"topics.partitions is {settings.topics.partitions}; set it to {sources}"
        )
    log.info("topics ready: %s", counts)
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_results_store(settings)
    references = TopicReferences(settings)
    references.start()
    reader = BrokerReader(confluent_config(settings.kafka), settings.worker.app_id)
    app = create_app(settings, sources, references, reader, store)
    ensure_changelogs(settings, [table.changelog_topic.get_topic_name()
                                 for table in app.tables.values()], sources)
    watchdog = ShutdownWatchdog(settings.worker.shutdown_timeout_s)
    tune_gc()  # after the imports and the app: what they made is frozen
    worker = MonitorWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                           watchdog=watchdog)
    try:
        worker.execute_from_commandline()
    finally:
        reader.close()
        references.stop()
        if store is not None:
            store.close()
    return 0
