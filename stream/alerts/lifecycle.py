"""An alert's lifecycle: per-window verdicts folded into pending, firing and resolved.

One :class:`Track` per fingerprint keeps the verdicts of its last windows (by window start)
and what was last *published* for it. The state is never updated step by step from arrival
order: it is recomputed as a fold over the verdicts in window order, from a base state that
summarises windows pruned from the history. So windows that finalise out of order, a label
revision that changes an old window's verdict, and a replay of the same window after a crash
all lead to the same state as the in-order, once-only evaluation would.

The fold, with ``N`` = windows to fire and ``M`` = windows to resolve (hysteresis):

- ``ok``: a breach starts ``pending`` (or ``firing`` when ``N = 1``);
- ``pending``: ``N`` consecutive breaches fire; a clear window goes back to ``ok``;
- ``firing``: a clear window starts ``resolving`` (or ``ok`` when ``M = 1``);
- ``resolving``: ``M`` consecutive clear windows resolve (``ok``); a breach: ``firing``.

An alert is *open* in ``firing`` and ``resolving``. A state change is published when the
fold finds a change after the last published one (so an episode that opened and closed
among windows that arrived out of order is still told), or when a revision leaves the fold's
open/closed different from the published one; so nothing is published twice while firing,
and the id of a change (fingerprint, state, window) is the same when it is computed again
after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "pending", "firing", "resolving"]
OPEN: frozenset[str] = frozenset({"firing", "resolving"})


@dataclass(slots=True)
class Fold:
    """State of the fold after some window."""

    status: Status = "ok"
    run: int = 0
    changed_at: int | None = None  # window where open/closed last changed

    def step(self, window: int, breach: bool, fire_after: int, resolve_after: int) -> None:
        was_open = self.status in OPEN
        if self.status in ("ok", "pending"):
            if breach:
                self.run = self.run + 1 if self.status == "pending" else 1
                self.status = "firing" if self.run >= fire_after else "pending"
                if self.status == "firing":
                    self.run = 0
            else:
                self.status, self.run = "ok", 0
        elif breach:
            self.status, self.run = "firing", 0
        else:
            self.run += 1
            self.status = "ok" if self.run >= resolve_after else "resolving"
            if self.status == "ok":
                self.run = 0
        if (self.status in OPEN) != was_open:
            self.changed_at = window

    def to_list(self) -> list[Any]:
        return [self.status, self.run, self.changed_at]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Fold:
        return cls(raw[0], int(raw[1]), None if raw[2] is None else int(raw[2]))


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change to publish: the alert opened (``firing``) or closed (``resolved``)."""

    state: Literal["firing", "resolved"]
    window: int
    value: float | None
    note: Any = None  # what was recorded with the window's verdict (see Track.record)


@dataclass(slots=True)
class Track:
    """Verdict history and published state of one fingerprint."""

    verdicts: dict[int, tuple[bool, float]] = field(default_factory=dict)
    base: Fold = field(default_factory=Fold)
    base_window: int | None = None  # windows at or before it are folded into ``base``
    published: Literal["firing", "resolved", ""] = ""
    published_window: int | None = None
    notes: dict[int, Any] = field(default_factory=dict)

    def record(self, window: int, breach: bool, value: float, keep: int,
               fire_after: int, resolve_after: int, note: Any = None) -> bool:
        """Set a window's verdict (a revision replaces it); prune to ``keep`` windows.
        ``note`` (JSON-safe) is kept with it, so that a state change found later at this
        window (windows out of order) still says what this window showed.
        False when the window is older than the history (too late to count)."""
        if self.base_window is not None and window <= self.base_window:
            return False
        self.verdicts[window] = (breach, value)
        if note is None:
            self.notes.pop(window, None)
        else:
            self.notes[window] = note
        while len(self.verdicts) > keep:
            oldest = min(self.verdicts)
            self.notes.pop(oldest, None)
            old_breach, _ = self.verdicts.pop(oldest)
            self.base.step(oldest, old_breach, fire_after, resolve_after)
            self.base_window = oldest
        return True

    def fold(self, fire_after: int, resolve_after: int,
             changes: list[tuple[int, bool]] | None = None) -> Fold:
        """The state after the last window; ``changes`` collects (window, opened) of every
        open/close change within the kept windows."""
        state = Fold(*self.base.to_list())
        for window in sorted(self.verdicts):
            before = state.status in OPEN
            state.step(window, self.verdicts[window][0], fire_after, resolve_after)
            if changes is not None and (state.status in OPEN) != before:
                changes.append((window, not before))
        return state

    def status(self, fire_after: int, resolve_after: int) -> Status:
        return self.fold(fire_after, resolve_after).status

    def _change(self, state: Literal["firing", "resolved"], window: int) -> Transition:
        value = self.verdicts[window][1] if window in self.verdicts else None
        return Transition(state, window, value, self.notes.get(window))

    def transitions(self, fire_after: int, resolve_after: int) -> list[Transition]:
        """The state changes to publish now, in window order; mark each published once it
        is delivered (:meth:`mark_published`).

        Every change the fold finds after the last published one is published, so an
        episode that opened and closed among windows that arrived out of order is still
        told (firing, then resolved). Then, if the fold's open/closed still differs from
        the published state (a revision changed a window already published), the change
        that reconciles them, at the window where the fold last changed, or the latest."""
        changes: list[tuple[int, bool]] = []
        state = self.fold(fire_after, resolve_after, changes)
        out: list[Transition] = []
        is_open = self.published == "firing"
        after = self.published_window
        for window, opened in changes:
            if (after is not None and window <= after) or opened == is_open:
                continue
            out.append(self._change("firing" if opened else "resolved", window))
            is_open, after = opened, window
        if (state.status in OPEN) != is_open:
            window = state.changed_at if state.changed_at is not None else max(self.verdicts)
            if after is not None:
                window = max(window, after)
            out.append(self._change("resolved" if is_open else "firing", window))
        return out

    def transition(self, fire_after: int, resolve_after: int) -> Transition | None:
        """The first of :meth:`transitions` (tests and simple callers)."""
        found = self.transitions(fire_after, resolve_after)
        return found[0] if found else None

    def mark_published(self, transition: Transition) -> None:
        self.published = transition.state
        self.published_window = transition.window

    def to_json(self) -> dict[str, Any]:
        return {"v": [[w, int(b), x] for w, (b, x) in sorted(self.verdicts.items())],
                "b": self.base.to_list(), "bw": self.base_window, "p": self.published,
                "pw": self.published_window,
                "n": [[w, note] for w, note in sorted(self.notes.items())]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Track:
        return cls({int(w): (bool(b), float(x)) for w, b, x in raw["v"]},
                   Fold.from_list(raw["b"]), raw["bw"], raw["p"], raw["pw"],
                   {int(w): note for w, note in raw.get("n", [])})
