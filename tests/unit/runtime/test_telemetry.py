"""The /metrics collector: names, labels and totals from the stages' own counters."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from stream.ingest.dead_letters import IngestStats
from stream.runtime.telemetry import Sources, Telemetry


def _samples(t: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(t.exposition().decode())
            for s in f.samples}


def _stage(**counters: int) -> Any:
    return SimpleNamespace(counters=Counter(counters), stats=lambda: {
        "open_windows": 2, "open_events": 9, "join_entries_tracked": 4,
        "early_labels_waiting": 1})


def test_totals_survive_revocation_and_lag_is_end_minus_next() -> None:
    ingest = IngestStats()
    ingest.valid.update({"prediction": 10, "label": 3})
    ingest.rejected.update({"not_json": 2})
    ingest.messages.update({"preds": 5})
    stages = {0: _stage(duplicate_predictions=1, joined_labels=2),
              1: _stage(duplicate_predictions=2, expired_unlabelled=5)}
    merges = {0: SimpleNamespace(finalised=3, revisions=1, partials={"w": 1})}
    positions = {"preds[0]": {"next": 40, "highwater": 42, "quiet_s": 1.5},
                 "preds[1]": {"next": None, "highwater": 7, "quiet_s": None}}
    t = Telemetry(Sources(ingest, stages, merges, lambda: positions, {"refetched": 4},
                          {"firing": 1, "resolved": 0, "windows": 6}, lambda: 12))
    t.stored(100, 0.02)
    got = _samples(t)
    assert got[("tidewatch_ingest_events_total", (("kind", "prediction"),))] == 10
    assert got[("tidewatch_ingest_rejected_events_total", (("reason", "not_json"),))] == 2
    assert got[("tidewatch_duplicate_events_total", (("kind", "prediction"),))] == 3
    assert got[("tidewatch_join_expired_total", (("what", "prediction_without_label"),))] == 5
    assert got[("tidewatch_open_windows", (("partition", "1"),))] == 2
    assert got[("tidewatch_consumer_lag_messages", (("partition", "0"), ("topic", "preds")))] == 2
    assert ("tidewatch_consumer_lag_messages", (("partition", "1"), ("topic", "preds"))) \
        not in got  # next offset unknown: no lag claimed
    assert got[("tidewatch_windows_finalised_total", ())] == 3
    assert got[("tidewatch_store_backlog_rows", ())] == 12
    assert got[("tidewatch_store_rows_total", ())] == 100
    assert got[("tidewatch_store_write_seconds_count", ())] == 1
    assert got[("tidewatch_alert_changes_total", (("state", "firing"),))] == 1
    # Partition 1 and the merge stage are revoked: their counts stay in the totals.
    t.retire(stage1=stages.pop(1), merge=merges.pop(0))
    got = _samples(t)
    assert got[("tidewatch_duplicate_events_total", (("kind", "prediction"),))] == 3
    assert got[("tidewatch_windows_finalised_total", ())] == 3
    assert ("tidewatch_open_windows", (("partition", "1"),)) not in got
    assert all(name.startswith("tidewatch_") for name, _ in got)
