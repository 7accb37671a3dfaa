"""The lifecycle fold: hysteresis, no duplicates, replay and out-of-order windows."""

from __future__ import annotations

import itertools

from stream.alerts.lifecycle import Track, Transition

W = 60_000


def run(verdicts: list[bool], n: int, m: int, order: list[int] | None = None,
        keep: int = 32) -> list[Transition]:
    track = Track()
    out = []
    for i in order if order is not None else range(len(verdicts)):
        track.record(i * W, verdicts[i], float(verdicts[i]), keep, n, m)
        for change in track.transitions(n, m):
            out.append(change)
            track.mark_published(change)
    return out


def test_fires_after_n_and_resolves_after_m() -> None:
    v = [False, True, True, True, False, True, False, False, False]
    assert [(t.state, t.window // W) for t in run(v, 2, 2)] == [("firing", 2), ("resolved", 7)]


def test_single_breach_below_n_does_not_fire() -> None:
    assert run([True, False, True, False, True, False], 2, 1) == []


def test_no_duplicate_while_firing_and_refire_after_resolution() -> None:
    v = [True] * 5 + [False] * 3 + [True] * 3
    assert [(t.state, t.window // W) for t in run(v, 1, 3)] == [
        ("firing", 0), ("resolved", 7), ("firing", 8)]


def test_replay_of_every_window_publishes_nothing_more() -> None:
    v = [False, True, True, False, False, True]
    track = Track()
    seen = []
    for i in [*range(6), *range(6)]:  # the second pass is a replay
        track.record(i * W, v[i], 0.0, 32, 1, 2)
        for change in track.transitions(1, 2):
            seen.append((change.state, change.window))
            track.mark_published(change)
    assert seen == [("firing", W), ("resolved", 4 * W), ("firing", 5 * W)]


def test_out_of_order_windows_end_in_the_in_order_state() -> None:
    v = [False, True, True, True, False, False, False, True, True]
    in_order = run(v, 2, 2)
    for order in itertools.islice(itertools.permutations(range(len(v))), 0, 4000, 37):
        got = run(v, 2, 2, order=list(order))
        states = [t.state for t in got]
        assert states == ["firing", "resolved"] * (len(states) // 2) + ["firing"] * (
            len(states) % 2), states  # alternating, never twice the same
        assert got[-1].state == in_order[-1].state


def test_an_episode_that_opened_and_closed_out_of_order_is_still_told() -> None:
    """The clear windows after a drift are evaluated before the drifted ones complete the
    N in a row: the fold is closed again by then, and the episode must still be published."""
    v = [False, True, True, True, False, False, False]
    got = run(v, 3, 2, order=[0, 4, 5, 6, 1, 2, 3])
    assert [(t.state, t.window // W) for t in got] == [("firing", 3), ("resolved", 5)]


def test_state_survives_serialisation_and_pruning() -> None:
    v = [True, True, False, False, True, True, True, False, False, False]
    track = Track()
    out = []
    for i, breach in enumerate(v):
        track = Track.from_json(track.to_json())  # a restart between every window
        track.record(i * W, breach, 1.0, 3, 2, 2)
        for change in track.transitions(2, 2):
            out.append((change.state, change.window // W))
            track.mark_published(change)
    assert out == [("firing", 1), ("resolved", 3), ("firing", 5), ("resolved", 8)]
    assert track.record(0, True, 1.0, 3, 2, 2) is False  # older than the kept history


def test_revision_that_clears_the_only_breach_resolves() -> None:
    track = Track()
    track.record(0, True, 0.5, 32, 1, 1)
    change = track.transition(1, 1)
    assert change is not None and change.state == "firing"
    track.mark_published(change)
    track.record(0, False, 0.9, 32, 1, 1)  # late labels: the window was fine after all
    change = track.transition(1, 1)
    assert change is not None and (change.state, change.window) == ("resolved", 0)
