"""A bound on how long the worker may take to stop.

Faust's graceful stop can hang: in CI, after an agent crashed, the worker logged Kafka's
"LeaveGroup request succeeded" and then never finished stopping its consumer (the likely race
is in docs/delivery.md, point 13), so the process stayed up, holding no partitions,
until something killed it. A supervisor restarts a worker that *exits*; one that hangs it
cannot see. So once stopping begins, a timer thread ends the process after
``worker.shutdown_timeout_s``, whatever the event loop is doing.

Exiting hard is safe for the same reason SIGKILL is (docs/delivery.md): offsets are committed
only for messages whose effects are already in the changelogs and the results topic, so a new
worker resumes from the committed offsets and counts nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: The exit code of a stop that overran its bound: sysexits' EX_SOFTWARE, as mode uses for
#: a crash, so a supervisor treats it as a failure and restarts the worker.
EXIT_STOP_OVERRAN = 70


class ShutdownWatchdog:
    """Ends the process if a stop that has begun is not over within ``timeout_s``."""

    def __init__(self, timeout_s: float,
                 exit_process: Callable[[int], object] = os._exit) -> None:
        """``exit_process`` is ``os._exit`` (no cleanup: the cleanup is what hangs); tests
        pass a recorder."""
        self.timeout_s = timeout_s
        self._exit = exit_process
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def arm(self, why: str) -> None:
        """Start the countdown (once: a second call keeps the first deadline)."""
        with self._lock:
            if self._timer is not None:
                return
            log.info("%s: the worker must stop within %g s", why, self.timeout_s)
            # A daemon thread: a stop that finishes in time exits without waiting for it.
            self._timer = threading.Timer(self.timeout_s, self._overran)
            self._timer.daemon = True
            self._timer.start()

    def _overran(self) -> None:
        log.critical("stopping took more than %g s; exiting now (code %d). A restart "
                     "resumes from the committed offsets, as after SIGKILL",
                     self.timeout_s, EXIT_STOP_OVERRAN)
        for stream in (sys.stdout, sys.stderr):
            # A closed or broken stream must not keep the process from exiting.
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        self._exit(EXIT_STOP_OVERRAN)
