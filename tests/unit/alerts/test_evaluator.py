"""The evaluator on synthetic windows: concept change, covariate shift, replay, restart."""

from __future__ import annotations

import pytest

from stream.alerts.evaluator import ModelAlerts
from stream.alerts.messages import decode_alert, encode_alert
from stream.config import AlertRule, Settings
from stream.metrics.reference import ReferenceProfile
from stream.results import AlertRecord, WindowResults

from .helpers import T0, W, window

REFERENCE = ReferenceProfile(3000, {}, {"accuracy": 1.0}, 3000)
SETTINGS = Settings(windows={"size_s": 60})


def run(windows: list[WindowResults], restart_every: bool = False,
        settings: Settings = SETTINGS) -> list[AlertRecord]:
    state = ModelAlerts()
    out: list[AlertRecord] = []
    for i, results in enumerate(windows):
        if restart_every:
            state = ModelAlerts(state.to_bytes())
        out.extend(state.evaluate(results, settings, REFERENCE, now=i).alerts)
    return out


def summary(alerts: list[AlertRecord]) -> list[tuple[str, str, int]]:
    return [(a.rule, a.state, (a.window_start - T0) // W) for a in alerts]


def test_stationary_fires_nothing() -> None:
    assert run([window(i) for i in range(30)]) == []


def test_concept_change_fires_performance_and_concept_at_the_change_and_resolves() -> None:
    accuracies = [1.0] * 10 + [0.915] * 4 + [1.0] * 8
    alerts = run([window(i, accuracy=a, segments={"country=DE": a - 0.05, "country=FR": a})
                  for i, a in enumerate(accuracies)])
    got = summary(alerts)
    assert ("performance_drop", "firing", 10) in got
    assert ("concept_drift", "firing", 10) in got
    assert ("performance_drop", "resolved", 15) in got
    assert ("concept_drift", "resolved", 15) in got
    assert all(w >= 10 for _, _, w in got)
    assert len(got) == 4  # nothing else, and nothing twice
    firing = next(a for a in alerts if a.rule == "performance_drop" and a.state == "firing")
    assert firing.contributors[0].name == "country=DE"
    assert firing.value is not None and firing.value < 0.001
    assert "country=DE" in firing.message


def test_small_windows_need_stronger_evidence() -> None:
    """A 3-point drop over 40 labels is not significant; over 4000 it is."""
    assert [a.rule for a in run([window(0, accuracy=0.97, labelled=40, count=40)])
            if a.rule == "performance_drop"] == []
    assert "performance_drop" in [a.rule for a in run(
        [window(0, accuracy=0.97, labelled=4000, count=4000)])]


def test_covariate_shift_names_the_shifted_features() -> None:
    shifted = {"x1": 0.6, "x2": 0.3}
    windows = [window(i, drifted=shifted if 5 <= i < 10 else None) for i in range(14)]
    alerts = run(windows)
    assert summary(alerts) == [("dataset_drift", "firing", 7), ("dataset_drift", "resolved", 11)]
    names = [c.name for c in alerts[0].contributors]
    assert names[:2] == ["x1", "x2"]


def test_replay_and_restart_change_nothing() -> None:
    accuracies = [1.0] * 5 + [0.9] * 3 + [1.0] * 5
    windows = [window(i, accuracy=a) for i, a in enumerate(accuracies)]
    straight = run(windows)
    replayed = run([w for w in windows for _ in range(2)])
    restarted = run(windows, restart_every=True)
    assert [a.id for a in straight] == [a.id for a in replayed] == [a.id for a in restarted]
    assert len({a.id for a in straight}) == len(straight) == 4


def test_out_of_order_windows_and_revisions() -> None:
    accuracies = [1.0] * 6 + [0.9] * 3 + [1.0] * 5
    windows = [window(i, accuracy=a) for i, a in enumerate(accuracies)]
    order = [0, 2, 1, 3, 5, 4, 7, 6, 8, 10, 9, 11, 13, 12]
    shuffled = run([windows[i] for i in order])
    assert {(a.rule, a.state) for a in shuffled} == {
        ("performance_drop", "firing"), ("concept_drift", "firing"),
        ("performance_drop", "resolved"), ("concept_drift", "resolved")}
    # A window first seen with few labels (no verdict possible) is revised with more.
    first = window(3, accuracy=0.9, labelled=10, count=600)
    revised = window(3, accuracy=0.9, labelled=600, count=600, final=False)
    alerts = run([*[window(i) for i in range(3)], first, revised])
    assert ("performance_drop", "firing", 3) in summary(alerts)


def test_volume_collapse_and_user_rule() -> None:
    counts = [600] * 6 + [20] + [600] * 3
    settings = Settings(windows={"size_s": 60}, rules=[
        AlertRule(name="few_labels", metric="accuracy", family="performance", op="<",
                  threshold=0.95, model_id="m", severity="info")])
    alerts = run([window(i, count=c, labelled=min(c, 600), accuracy=0.94 if i == 8 else 1.0)
                  for i, c in enumerate(counts)], settings=settings)
    got = summary(alerts)
    assert ("volume_collapse", "firing", 6) in got
    assert ("few_labels", "firing", 8) in got


def test_messages_follow_the_schema_and_round_trip() -> None:
    alerts = run([window(i, accuracy=a) for i, a in enumerate([1.0] * 4 + [0.9] * 2)])
    assert alerts
    for alert in alerts:
        assert decode_alert(encode_alert(alert)) == alert


def test_an_invalid_message_is_refused() -> None:
    from dataclasses import replace

    from stream.alerts.messages import AlertMessageError

    alert = run([window(i, accuracy=a) for i, a in enumerate([1.0] * 4 + [0.9])])[0]
    with pytest.raises(AlertMessageError):
        encode_alert(replace(alert, severity="urgent"))  # type: ignore[arg-type]


def test_a_firing_found_later_still_names_its_window_s_features() -> None:
    """Window 7 completes the 3 drifted windows but finalises before window 6: the firing is
    found when 6 arrives, at window 7, and still names what window 7 showed."""
    shifted = {"x1": 0.6, "x2": 0.3}
    windows = [window(i, drifted=shifted if i >= 5 else None) for i in range(9)]
    alerts = run([windows[i] for i in [0, 1, 2, 3, 4, 5, 7, 6, 8]])
    firing = [a for a in alerts if a.rule == "dataset_drift"]
    assert [(a.state, (a.window_start - T0) // W) for a in firing] == [("firing", 7)]
    assert [c.name for c in firing[0].contributors][:2] == ["x1", "x2"]


def test_quiet_tracks_are_forgotten_open_ones_kept() -> None:
    state = ModelAlerts()
    for i in range(6):  # fires performance_drop and concept_drift, still open at the end
        state.evaluate(window(i, accuracy=1.0 if i < 4 else 0.9), SETTINGS, REFERENCE, 0)
    open_before = state.open_alerts()
    assert len(open_before) == 2
    tracks_before = len(state.tracks)
    # A new version takes over; the old one's windows stop.
    from dataclasses import replace

    for i in range(6, 6 + 40):
        results = window(i)
        results = WindowResults(tuple(replace(d, model_version="v2") for d in results.drift),
                                tuple(replace(m, model_version="v2") for m in results.metrics))
        state.evaluate(results, SETTINGS, REFERENCE, 0)
    assert state.open_alerts() == open_before  # never resolved: kept
    assert set(state.histories) == {"v2"}
    v2_tracks = len(state.tracks) - len(open_before)
    assert v2_tracks <= tracks_before  # v1's closed tracks are gone


def test_label_coverage_is_a_row_rules_can_read() -> None:
    settings = Settings(windows={"size_s": 60}, rules=[
        AlertRule(name="few_labels", metric="label_coverage", family="concept", op="<",
                  threshold=0.5)])
    alerts = run([window(0, labelled=100, count=600)], settings=settings)
    assert [(a.rule, a.state) for a in alerts] == [("few_labels", "firing")]


def test_a_revision_older_than_the_history_is_ignored() -> None:
    state = ModelAlerts()
    for i in range(40):
        state.evaluate(window(i), SETTINGS, REFERENCE, 0)
    late = state.evaluate(window(2, accuracy=0.5, final=False), SETTINGS, REFERENCE, 0)
    assert (late.alerts, late.stale) == ([], 1)


def test_shift_told_when_its_end_arrives_before_its_middle() -> None:
    """As on the broker: every window closes at once and they reach the evaluator in any
    order; a drift episode (windows 5-8) is told even if its clear windows come first."""
    shifted = {"x1": 0.6, "x2": 0.3}
    windows = [window(i, drifted=shifted if 5 <= i < 9 else None) for i in range(14)]
    order = [0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 5, 8, 6, 7]
    got = summary(run([windows[i] for i in order]))
    # 5, 6 and 8 are three breaches in a row among the windows present when 6 arrives: it
    # fires at 8 (in order it would at 7; a missing window counts as no window, not clear).
    assert got == [("dataset_drift", "firing", 8), ("dataset_drift", "resolved", 10)]
