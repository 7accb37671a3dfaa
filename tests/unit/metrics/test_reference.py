"""Reference profiles: from JSON Lines, CSV and states; bounded; byte round trip."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stream.config import ModelSettings
from stream.errors import MetricsError
from stream.metrics.reference import ReferenceProfile
from stream.results import PREDICTION_COLUMN


def _events(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {
            "request_id": f"r{i}",
            "features": {
                "age": int(rng.integers(18, 90)),
                "city": ["x", "y", "z"][i % 3],
                "score": None if i % 4 == 0 else float(rng.normal()),
            },
            "probability": float(rng.random()),
            "label": i % 2,
        }
        for i in range(n)
    ]


def test_from_jsonl_matches_from_events_and_round_trips(tmp_path: Path) -> None:
    evs = _events(300)
    path = tmp_path / "ref.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in evs) + b"\n\n")
    model = ModelSettings()
    prof = ReferenceProfile.from_file(path, model)
    assert prof == ReferenceProfile.from_events(evs, model)
    assert prof.rows == 300 and prof.labelled == 300
    age, city, score = prof.columns["age"], prof.columns["city"], prof.columns["score"]
    assert (age.kind, age.count, age.min, age.max) == (
        "numeric",
        300,
        min(e["features"]["age"] for e in evs),
        max(e["features"]["age"] for e in evs),
    )
    assert city.kind == "categorical" and dict(city.counts) == {"x": 100, "y": 100, "z": 100}
    assert score.count == 225 and score.sample.size == 225
    assert PREDICTION_COLUMN in prof.columns
    assert prof.performance["accuracy"] is not None
    assert ReferenceProfile.from_bytes(prof.to_bytes()) == prof


def test_from_csv_infers_numeric_columns(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["request_id", "age", "city", "probability", "label"])
        w.writerows(
            [
                ["a", "31", "x", "0.9", "1"],
                ["b", "", "y", "0.2", "0"],
                ["c", "40.5", "7", "0.6", ""],
            ]
        )
    prof = ReferenceProfile.from_file(path, ModelSettings())
    assert prof.columns["age"].kind == "numeric" and prof.columns["age"].count == 2
    assert prof.columns["city"].kind == "categorical"
    assert dict(prof.columns["city"].counts) == {"x": 1, "y": 1, "7": 1}
    assert prof.labelled == 2


def test_flat_jsonl_lines_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "flat.jsonl"
    path.write_bytes(b'{"request_id": "a", "age": 3, "prediction": 1}\n')
    prof = ReferenceProfile.from_file(path, ModelSettings())
    assert set(prof.columns) == {"age", PREDICTION_COLUMN}
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{not json\n")
    with pytest.raises(MetricsError):
        ReferenceProfile.from_file(bad, ModelSettings())
    with pytest.raises(MetricsError):
        ReferenceProfile.from_file(tmp_path / "missing.jsonl", ModelSettings())


def test_sample_is_bounded_but_counts_are_true() -> None:
    prof = ReferenceProfile.from_events(
        _events(3000), ModelSettings(), sample_capacity=500, batch_size=700
    )
    assert prof.columns["age"].count == 3000
    assert prof.columns["age"].sample.size == 500
    assert prof.rows == 3000
