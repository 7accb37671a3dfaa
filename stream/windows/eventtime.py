"""Event-time progress per model within a partition, and what "caught up" means.

Models are independent producers: one may send its log in bulk, lag by an hour, or be
replayed. So each model keeps its own clock on each input partition (:class:`ModelClock`): its
windows close when its own watermark (newest event of that model minus the model's allowed
lateness) passes their end, or when the model has been quiet there for the idle timeout.
Another model's traffic never moves it. See ``docs/event-time.md``.

Quiet must mean "nothing of this model was there to read", not "nothing read lately": a
partition that is behind (a backlog, a slow fetch, a rebalance) holds events not read yet.
:class:`CatchUp` turns the broker's end offsets into one figure per partition, the *caught-up
time*: the latest moment such that every message on the partition at that moment has been
processed. A model is idle on a partition when the partition is caught up to a moment at least
the idle timeout after that model's last event there; stage 2 uses the same figure to treat a
partition that holds nothing of a model as done with that model's window.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class ModelClock:
    """One model's event-time progress on one input partition."""

    lateness_ms: int
    #: Every window of the model ending at or before this has been closed (sent) here.
    closed_through: int = 0
    #: Newest event time of the model seen here (the watermark is this minus the lateness).
    max_ts: int = 0
    #: When (wall clock, s) the model's last prediction here was processed.
    last_data: float = 0.0
    idle: bool = False
    #: The label horizon's clock (see :mod:`stream.join.horizon`):
    #: join entries and labelled sides of windows ending more than the horizon before it go.
    horizon_ts: int = 0
    #: (offset, newest event time so far) per prediction message not yet covered by the
    #: labels read (see :mod:`stream.join.horizon`).
    read: deque[tuple[int, int]] = field(default_factory=deque)
    #: Newest event time of the model's predictions before the labels' safe offset: any
    #: label for an earlier window that comes now was appended after them, too late.
    label_safe_ts: int = 0
    #: Join entries of this model to drop, by the event time they expire at. Entries expire
    #: at their window's end plus the label horizon, so there are few distinct times: a heap
    #: of the times and a list per time, not a heap push per event.
    expiry_times: list[int] = field(default_factory=list)
    expiry: dict[int, list[bytes]] = field(default_factory=dict)

    def watermark(self) -> int:
        return self.max_ts - self.lateness_ms

    def expire_later(self, at: int, request_id: bytes) -> None:
        waiting = self.expiry.get(at)
        if waiting is None:
            heapq.heappush(self.expiry_times, at)
            self.expiry[at] = [request_id]
        else:
            waiting.append(request_id)

    def due(self) -> list[tuple[int, list[bytes]]]:
        """Expiry times the model's horizon clock has passed, each with its entries (those of
        the windows ending a label horizon before it), removed from the queue."""
        out: list[tuple[int, list[bytes]]] = []
        while self.expiry_times and self.expiry_times[0] < self.horizon_ts:
            at = heapq.heappop(self.expiry_times)
            out.append((at, self.expiry.pop(at)))
        return out

    def processed(self, offset: int) -> None:
        """The prediction message at ``offset`` was processed (``max_ts`` as it left it)."""
        if self.read and self.read[-1][1] == self.max_ts:
            return  # nothing new to cover
        if len(self.read) >= 100_000:  # bounded; the oldest is covered first anyway
            self.label_safe_ts = max(self.label_safe_ts, self.read.popleft()[1])
        self.read.append((offset, self.max_ts))

    def cover(self, safe_offset: int) -> None:
        """Every label appended before the prediction at ``safe_offset`` was has been read:
        the predictions before it are safe to expire on their own clock."""
        while self.read and self.read[0][0] < safe_offset:
            self.label_safe_ts = max(self.label_safe_ts, self.read.popleft()[1])

    def waiting(self) -> int:
        """Join entries queued for expiry."""
        return sum(len(ids) for ids in self.expiry.values())


class CatchUp:
    """Caught-up time of one partition, from (time, broker end offset) marks.

    On each tick the agent asks the broker for the partition's end offset at time ``t`` and
    calls :meth:`mark`; once the offset the agent expects next has reached that end, every
    message that was on the partition at ``t`` has been processed, and ``t`` is the
    caught-up time. Under steady traffic the end is never reached exactly (new messages keep
    coming), but each mark is reached a moment later, so the figure trails real time by the
    processing delay instead of stalling.

    Examples
    --------
    >>> c = CatchUp()
    >>> c.mark(10.0, end=100, expected=40)   # 60 messages unread at t=10
    >>> c.caught_up is None
    True
    >>> c.mark(11.0, end=130, expected=100)  # everything there at t=10 is read
    >>> c.caught_up
    10.0
    >>> c.mark(12.0, end=130, expected=130)
    >>> c.caught_up
    12.0
    """

    __slots__ = ("_marks", "caught_up")

    def __init__(self) -> None:
        # Bounded: a partition that never catches up must not grow it; dropping the oldest
        # unreached marks only means those moments are never reported.
        self._marks: deque[tuple[float, int]] = deque(maxlen=10_000)
        self.caught_up: float | None = None

    def mark(self, t: float, end: int, expected: int) -> None:
        self._marks.append((t, end))
        while self._marks and self._marks[0][1] <= expected:
            self.caught_up = self._marks.popleft()[0]
