from __future__ import annotations

import math

import orjson
import pytest

from stream.errors import StoreError
from stream.store.base import QueryResult, parse_json_compact
from stream.store.output import render

RESULT = QueryResult(
    ("feature", "statistic", "drifted", "n"),
    ("String", "Nullable(Float64)", "Nullable(UInt8)", "UInt64"),
    [("age", 0.25, 1, 10), ('a "b", c', math.inf, None, 2000)],
)


def test_table_aligns_numbers_right_and_shows_null() -> None:
    assert render(RESULT) == (
        "feature   statistic  drifted     n\n"
        "--------  ---------  -------  ----\n"
        "age            0.25        1    10\n"
        'a "b", c        inf     NULL  2000\n'
        "(2 rows)\n"
    )


def test_csv_and_json() -> None:
    assert render(RESULT, "csv") == (
        'feature,statistic,drifted,n\nage,0.25,1,10\n"a ""b"", c",inf,,2000\n'
    )
    assert orjson.loads(render(RESULT, "json")) == [
        {"feature": "age", "statistic": 0.25, "drifted": 1, "n": 10},
        {"feature": 'a "b", c', "statistic": "inf", "drifted": None, "n": 2000},
    ]


def test_statement_without_result() -> None:
    assert render(QueryResult()) == "OK\n"
    assert parse_json_compact(b"") == QueryResult()


def test_output_that_is_not_json_compact_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="leave out any FORMAT clause"):
        parse_json_compact(b"1,2\n")


def test_parse_json_compact_restores_floats() -> None:
    raw = orjson.dumps({
        "meta": [{"name": "v", "type": "Nullable(Float64)"}, {"name": "s", "type": "String"}],
        "data": [["inf", "inf"], ["-inf", "x"], [0, "0"], ["nan", None], [None, ""]],
    })  # fmt: skip
    columns, rows = parse_json_compact(raw)
    assert columns == ("v", "s")
    assert rows[:3] == [(math.inf, "inf"), (-math.inf, "x"), (0.0, "0")]
    assert isinstance(rows[2][0], float) and math.isnan(rows[3][0]) and rows[4] == (None, "")
