"""``tidewatch backfill`` end to end on chDB: the store holds the rows the stream would write.

The files are the events :mod:`tests.integration.test_topology_e2e` streams, in each format,
with bad rows mixed in; the rows read back from the store's ``*_latest`` views must equal
:func:`stream.merge.offline.offline_results` on the valid events, which is what the topology tests
hold the stream to. ``test_backfill_equals_stream`` (needs the broker) closes the loop: the
rows of a real worker run on the results topic equal the backfilled ones.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stream.cli import main
from stream.config import Settings
from stream.store import schema
from stream.store.embedded import EmbeddedStore
from stream.topics import ensure_topics

from .test_topology_e2e import (
    FAST,
    ResultsReader,
    differences,
    events,
    expected,
    ident,
    produce,
    wait_for_results,
)
from .workers import WorkerProcess, make_settings

pytestmark = pytest.mark.integration

METRICS = {"segments": ["country"], "sample_capacity": 200, "min_sample_size": 10}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` in the format ``path``'s suffix names (CSV and Parquet flat, dotted)."""
    if path.suffix == ".jsonl":
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
        return path
    flat = [{(f"{k}.{n}" if isinstance(v, dict) else k): (w if isinstance(v, dict) else v)
             for k, v in r.items() for n, w in (v.items() if isinstance(v, dict) else [(k, v)])}
            for r in rows]
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(flat), path)
        return path
    names = list(dict.fromkeys(k for r in flat for k in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, names)
        writer.writeheader()
        writer.writerows(flat)
    return path


def stored_rows(settings: Settings) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every row of the ``*_latest`` views, keyed as the topology tests key them."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    with EmbeddedStore(settings.store) as store:
        for view, table in (("feature_drift_latest", schema.DRIFT_TABLE),
                            ("window_metrics_latest", schema.METRICS_TABLE)):
            columns = [c for c in schema.COLUMNS[table] if c != "computed_at"]
            exprs = [f"toUnixTimestamp64Milli({c})" if c in schema.TIME_COLUMNS else c
                     for c in columns]
            for row in store.query(f"SELECT {', '.join(exprs)} FROM {view}").rows:
                doc = dict(zip(columns, row, strict=True))
                if "drifted" in doc and doc["drifted"] is not None:
                    doc["drifted"] = bool(doc["drifted"])
                out[ident(doc)] = doc
    return out


def backfill(config: Path, preds: list[Path], labels: list[Path]) -> int:
    return main(["backfill", "--config", str(config), "--predictions", *map(str, preds),
                 "--labels", *map(str, labels)])


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_backfilled_rows_equal_offline(tmp_path: Path, suffix: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ref_preds, _ = events(400, seed=99)
    reference = write(tmp_path / "reference.jsonl", ref_preds)
    settings, config = make_settings(
        "127.0.0.1:1", tmp_path,  # no broker: references come from the file
        metrics={**METRICS, "models": {"m": {"reference_path": str(reference),
                                             "protected_attribute": "country"}}})
    preds, labels = events(1_500, seed=7)
    bad = [{**preds[0], "request_id": "bad-1", "probability": 2.0},
           {**preds[0], "request_id": "bad-2", "model_id": "bad id"}]
    # Split over two files each: windows and label joins cross files.
    files = [write(tmp_path / f"p{i}{suffix}", part)
             for i, part in enumerate([preds[:700] + bad, preds[700:]])]
    label_files = [write(tmp_path / f"l{i}{suffix}", part)
                   for i, part in enumerate([labels[::2], labels[1::2]])]
    want = expected(settings, preds, labels)
    assert backfill(config, files, label_files) == 0
    out = capsys.readouterr().out
    assert f"{len(preds)} predictions, {len(labels)} labels valid; 2 rejected" in out, out
    assert "rejected prediction out_of_range: 1" in out
    assert "rejected prediction bad_model_id: 1" in out
    assert f"rows written: {len(want)} " in out
    windows = {(k[0], k[1], k[3]) for k in want}
    assert f"windows: {len(windows)} " in out
    diff = differences(stored_rows(settings), want)
    assert not diff, "\n".join(diff[:20])
    if suffix == ".jsonl":  # again: the same rows replace themselves, nothing doubles
        assert backfill(config, files, label_files) == 0
        with EmbeddedStore(settings.store) as store:
            total = store.query("SELECT (SELECT count() FROM feature_drift FINAL) + "
                                "(SELECT count() FROM window_metrics FINAL)").rows[0][0]
        assert total == len(want)


def test_backfill_refuses_a_store_of_kind_none(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, config = make_settings("127.0.0.1:1", tmp_path, store={"kind": "none"})
    preds = write(tmp_path / "p.jsonl", events(10)[0])
    assert backfill(config, [preds], []) == 1
    assert "no store to backfill into" in capsys.readouterr().err


def test_backfill_equals_stream(bootstrap: str, tmp_path: Path) -> None:
    """A real worker's rows on the results topic equal the backfilled rows of its events."""
    ref_preds, _ = events(400, seed=99)
    reference = write(tmp_path / "reference.jsonl", ref_preds)
    settings, config = make_settings(
        bootstrap, tmp_path, topics={"partitions": 2}, windows=FAST, store={"kind": "none"},
        metrics={**METRICS, "models": {"m": {"reference_path": str(reference)}}})
    ensure_topics(settings)
    preds, labels = events(900, seed=11, span_ms=120_000)
    files = [write(tmp_path / "p.jsonl", preds)], [write(tmp_path / "l.csv", labels)]
    reader = ResultsReader(bootstrap, f"{settings.worker.app_id}-results")
    worker = WorkerProcess(config, settings)
    try:
        worker.wait_until(lambda s: s is not None, what="worker web server")
        time.sleep(2)
        produce(settings, preds, labels)
        want = expected(settings, preds, labels)
        diff = wait_for_results(reader, want, [worker])
        assert not diff, "\n".join([*diff[:20], worker.diagnose()])
        streamed = dict(reader.rows)
    finally:
        reader.close()
        worker.stop()
    # The same events from files, into a chDB store (the worker wrote none).
    (tmp_path / "backfill").mkdir()
    settings, config = make_settings(
        bootstrap, tmp_path / "backfill", windows=FAST,
        metrics={**METRICS, "models": {"m": {"reference_path": str(reference)}}})
    assert backfill(config, *files) == 0
    diff = differences(stored_rows(settings), streamed)
    assert not diff, "\n".join(diff[:20])
