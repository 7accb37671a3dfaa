"""The backfill readers: each format gives the events the topic would, bad rows are counted."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stream.backfill.readers import BackfillError, Tally, detect_format, nest, read_events
from stream.events import validate_label, validate_prediction

EVENTS: list[dict[str, Any]] = [
    {"request_id": "r1", "model_id": "m", "model_version": "v1", "timestamp": 1_700_000_000_000,
     "features": {"x": 0.25, "c": "a", "n": 3}, "prediction": 1, "probability": 0.75,
     "segments": {"country": "DE"}, "latency_ms": 4.5},
    {"request_id": "r2", "model_id": "m", "model_version": "v1",
     "timestamp": "2023-11-14T22:13:21.5Z", "features": {"x": -1.0, "c": "1", "n": None},
     "prediction": 0, "probability": 0.125, "segments": {"country": "01"}, "latency_ms": 1},
]


def flat(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    names = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, names)
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
    return path


def read(path: Path, kind: str = "prediction", fmt: Any = "auto") -> tuple[list[Any], Tally]:
    tally = Tally()
    return list(read_events(path, kind, tally, fmt)), tally  # type: ignore[arg-type]


def want() -> list[dict[str, Any]]:
    return [validate_prediction(orjson.loads(orjson.dumps(e))) for e in EVENTS]


def test_jsonl_gives_the_validated_events_and_counts_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    lines = [orjson.dumps(EVENTS[0]), b"", b"{not json", orjson.dumps([EVENTS[1]]), b"[]",
             orjson.dumps({**EVENTS[0], "request_id": "r3", "model_id": "bad id"}),
             orjson.dumps({"request_id": "r4"}), b"7"]
    path.write_bytes(b"\n".join(lines))
    events, tally = read(path)
    assert events == want()
    assert events[1]["timestamp"] == 1_700_000_001_500  # normalised to epoch ms
    assert tally.valid["prediction"] == 2
    assert dict(tally.rejected) == {("prediction", "not_json"): 1,
                                    ("prediction", "empty_batch"): 1,
                                    ("prediction", "bad_model_id"): 1,
                                    ("prediction", "missing_field"): 1,
                                    ("prediction", "not_object"): 1}
    assert tally.examples[0].startswith(f"{path}:3: prediction not_json")


def test_csv_nests_dotted_columns_and_types_columns_as_a_whole(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [flat(e) for e in EVENTS])
    events, tally = read(path)
    assert not tally.rejected
    # "c" holds "a" and "1": a text column, so "1" stays text; segments are always text.
    assert events == want()
    assert events[1]["features"]["n"] is None  # an empty cell is a null feature
    assert events[1]["segments"] == {"country": "01"}


def test_csv_bad_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    rows = [flat(EVENTS[0]),
            {**flat(EVENTS[0]), "request_id": "r5", "probability": "high"},
            {**flat(EVENTS[0]), "request_id": "r6", "timestamp": "yesterday"},
            {**flat(EVENTS[0]), "request_id": "r7", "prediction": None}]
    path = write_csv(tmp_path / "p.csv", rows)
    with path.open("a") as fh:
        fh.write("r8,m,v1,1700000000000,1,2,3,4,5,6,7,8,9\n")  # too many cells
    events, tally = read(path)
    assert [e["request_id"] for e in events] == ["r1"]
    assert dict(tally.rejected) == {("prediction", "out_of_range"): 1,  # as the stream says
                                    ("prediction", "wrong_type"): 1,  # the extra cells
                                    ("prediction", "bad_timestamp"): 1,
                                    ("prediction", "missing_field"): 1}


def test_labels_from_csv(tmp_path: Path) -> None:
    labels = [{"request_id": "r1", "model_id": "m", "timestamp": 1_700_000_000_500, "label": 1},
              {"request_id": "r2", "model_id": "m", "timestamp": 1_700_000_000_600, "label": 0}]
    events, tally = read(write_csv(tmp_path / "l.csv", labels), "label")
    assert events == [validate_label(dict(e)) for e in labels]
    assert tally.valid["label"] == 2


def test_parquet_flat_columns_with_a_timestamp_type(tmp_path: Path) -> None:
    rows = [flat(e) for e in want()]
    table = pa.Table.from_pylist(rows)
    ts = pa.array([r["timestamp"] for r in rows], pa.int64()).cast(pa.timestamp("ms", "UTC"))
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", ts)
    pq.write_table(table, tmp_path / "p.parquet")
    events, tally = read(tmp_path / "p.parquet")
    assert not tally.rejected
    assert events == want()


def test_parquet_struct_and_map_columns(tmp_path: Path) -> None:
    rows = want()
    table = pa.Table.from_pylist(rows)  # features and segments as structs
    segments = pa.array([list(r["segments"].items()) for r in rows],
                        pa.map_(pa.string(), pa.string()))
    table = table.set_column(table.schema.get_field_index("segments"), "segments", segments)
    pq.write_table(table, tmp_path / "p.parquet")
    events, tally = read(tmp_path / "p.parquet", fmt="parquet")
    assert not tally.rejected
    assert events == rows


def test_parquet_row_that_fails_validation_is_counted(tmp_path: Path) -> None:
    rows = [flat(e) for e in want()]
    rows[1]["probability"] = 1.5
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    events, tally = read(tmp_path / "p.parquet")
    assert len(events) == 1
    assert dict(tally.rejected) == {("prediction", "out_of_range"): 1}
    assert tally.examples == [f"{tmp_path / 'p.parquet'}:row 2: prediction out_of_range: "
                              "probability must be a number in [0, 1]"]


def test_nest_drops_absent_segments_and_scores_but_keeps_null_features() -> None:
    assert nest({"features.x": None, "segments.c": None, "scores.a": 0.5, "probability": None,
                 "features": None}) == {"features": {"x": None}, "scores": {"a": 0.5}}


def test_format_from_suffix_or_refused(tmp_path: Path) -> None:
    assert detect_format(Path("a.ndjson")) == "jsonl"
    assert detect_format(Path("a.PQ")) == "parquet"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(BackfillError, match="--format"):
        detect_format(Path("a.txt"))
    (tmp_path / "x.parquet").write_bytes(b"nope")
    with pytest.raises(BackfillError, match="Parquet"):
        read(tmp_path / "x.parquet")
    with pytest.raises(BackfillError, match="cannot read"):
        read(tmp_path / "missing.jsonl")
