"""One correction to faust-streaming 0.15.3, applied when the app is built.

Faust's own stream-buffer flow control re-activates a partition when its buffer drains
(``Consumer.on_buffer_drop``) without checking whether it was paused with
``pause_partitions``: a paused partition silently resumes. Our label flow control
(:func:`stream.app.create_app`) pauses a partition's labels while too many wait for their
predictions; with the original method that pause lasted until the next buffer drain, and
under a backlog labels kept piling up (seen in ``load_tests/bench_stream.py``).
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer


def _on_buffer_drop(self: Any, tp: Any) -> None:
    buffered = self._buffered_partitions
    if tp in buffered:
        buffered.discard(tp)
        if tp not in self._paused_partitions:
            self._get_active_partitions().add(tp)


def apply() -> None:
    """Idempotent: patch the class before any consumer binds the method."""
    Consumer.on_buffer_drop = _on_buffer_drop  # type: ignore[method-assign]
