"""Rule selection and comparison over a window's rows; default rules and overrides."""

from __future__ import annotations

from collections.abc import Mapping

from stream.alerts.defaults import default_rules, rules_for
from stream.alerts.rules import (
    ObsKey,
    evaluate_rule,
    fingerprint,
    index_observations,
    observations,
)
from stream.config import AlertRule, AlertSettings, Settings

from .helpers import window

OBS = observations(window(0, drifted={"x1": 0.6}).drift,
                   window(0, segments={"country=DE": 0.8, "country=FR": 0.97}).metrics)


def test_model_level_rule_reads_segment_all_only() -> None:
    rule = AlertRule(name="acc", metric="accuracy", op="<", threshold=0.9)
    verdicts = evaluate_rule(rule, OBS)
    assert [(v.segment, v.breach) for v in verdicts] == [("all", False)]


def test_star_segment_gives_one_verdict_per_segment() -> None:
    rule = AlertRule(name="acc", metric="accuracy", op="<", threshold=0.9, segment="*")
    got = {v.segment: v.breach for v in evaluate_rule(rule, OBS)}
    assert got == {"all": False, "country=DE": True, "country=FR": False}


def test_drift_source_per_feature_and_named_feature() -> None:
    every = AlertRule(name="d", source="drift", metric="drifted", op=">=", threshold=1)
    got = {v.feature: v.breach for v in evaluate_rule(every, OBS)}
    assert got == {"x1": True, "x2": False, "x3": False, "__prediction__": False}
    one = AlertRule(name="d", source="drift", metric="statistic", feature="x1", threshold=0.5)
    assert [(v.feature, v.value, v.breach) for v in evaluate_rule(one, OBS)] == [
        ("x1", 0.6, True)]


def test_family_filter_and_missing_values_give_no_verdict() -> None:
    wrong_family = AlertRule(name="c", metric="count", family="quality", threshold=0)
    assert evaluate_rule(wrong_family, OBS) == []
    right = AlertRule(name="c", metric="count", family="service", op="<", threshold=700)
    assert [v.breach for v in evaluate_rule(right, OBS)] == [True]
    assert evaluate_rule(AlertRule(name="x", metric="no_such_metric", threshold=0), OBS) == []


def test_operators() -> None:
    for op, want in [(">", False), (">=", True), ("<", False), ("<=", True), ("==", True),
                     ("!=", False)]:
        rule = AlertRule(name="c", metric="count", family="service", op=op, threshold=600)
        assert [v.breach for v in evaluate_rule(rule, OBS)] == [want], op


def test_fingerprint_separates_every_identity_field() -> None:
    base = ("r", "m", "v1", "all", "")
    prints = {fingerprint(*base)}
    for i in range(5):
        changed = list(base)
        changed[i] += "x"
        prints.add(fingerprint(*changed))
    assert len(prints) == 6
    assert fingerprint("a|b", "c", "", "", "") != fingerprint("a", "b|c", "", "", "")


def test_defaults_follow_settings_and_a_named_rule_replaces_one() -> None:
    names = [r.name for r in default_rules(AlertSettings())]
    assert names == ["dataset_drift", "prediction_drift", "performance_drop", "concept_drift",
                     "volume_collapse", "label_coverage_collapse"]
    custom = AlertRule(name="performance_drop", metric="accuracy", op="<", threshold=0.8)
    other = AlertRule(name="only_b", metric="accuracy", threshold=0.5, model_id="b")
    settings = Settings(rules=[custom, other], alerts={"performance_alpha": 0.01})
    for_a = rules_for(settings, "a")
    assert [r.name for r in for_a].count("performance_drop") == 1
    assert custom in for_a and other not in for_a
    assert other in rules_for(settings, "b")
    drop = next(r for r in default_rules(settings.alerts) if r.name == "performance_drop")
    assert drop.threshold == 0.01
    assert rules_for(Settings(alerts={"default_rules": False}), "a") == []


def test_rules_and_alert_settings_load_from_yaml(tmp_path: object) -> None:
    from pathlib import Path

    from stream.config import load_settings

    path = Path(str(tmp_path)) / "s.yaml"
    path.write_text("""
rules:
  - {name: latency_high, metric: latency_p99, family: service, op: ">", threshold: 250,
     segment: "*", for_windows: 2, resolve_windows: 3, severity: critical}
alerts: {performance_alpha: 0.0001, cusum_threshold: 20}
""")
    settings = load_settings(path)
    rule = settings.rules[0]
    assert (rule.segment, rule.for_windows, rule.resolve_windows) == ("*", 2, 3)
    assert settings.alerts.cusum_threshold == 20
    assert "latency_high" in [r.name for r in rules_for(settings, "any")]


def _scan(rule: AlertRule, obs: Mapping[ObsKey, float | None]) -> list[tuple[str, str, float]]:
    """The rule's verdicts as the evaluator found them before the shared index: every
    observation in key order, filtered one by one."""
    out = []
    default = "*" if rule.source == "drift" else ""
    for (source, family, metric, feature, segment), value in sorted(obs.items()):
        if source != rule.source or metric != rule.metric or value is None:
            continue
        if rule.family is not None and family != rule.family:
            continue
        if rule.segment != "*" and segment != (rule.segment or "all"):
            continue
        wanted = rule.feature if rule.feature is not None else default
        if wanted != "*" and feature != wanted:
            continue
        out.append((segment, feature, float(value)))
    return out


def test_rules_read_the_window_s_shared_index_as_a_scan_of_every_observation() -> None:
    """The evaluator sorts a window's observations once for all its rules: every default
    rule, and drift and metric rules over every segment and feature, give the verdicts a
    scan of every observation in key order gives."""
    rules = [*default_rules(AlertSettings()),
             AlertRule(name="d", source="drift", metric="drifted", op=">=", threshold=1,
                       segment="*", feature="*"),
             AlertRule(name="a", metric="accuracy", op="<", threshold=0.9, segment="*"),
             AlertRule(name="s", source="drift", metric="statistic", feature="x1",
                       threshold=0.5)]
    index = index_observations(OBS)
    for rule in rules:
        got = [(v.segment, v.feature, v.value) for v in evaluate_rule(rule, OBS, index)]
        assert got == _scan(rule, OBS)
    assert [v.feature for v in evaluate_rule(rules[-3], OBS, index)] == [
        "__prediction__", "x1", "x2", "x3"]
    assert len(evaluate_rule(rules[-2], OBS, index)) == 3
