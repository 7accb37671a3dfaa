"""Query results as text: an aligned table for people, CSV and JSON for programs."""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Final, Literal

import orjson

from stream.store.base import QueryResult

Format = Literal["table", "csv", "json"]
FORMATS: Final = ("table", "csv", "json")
_NUMERIC: Final = ("Int", "UInt", "Float", "Decimal")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def _is_numeric(type_name: str) -> bool:
    bare = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(")
    return bare.startswith(_NUMERIC)


def render(result: QueryResult, fmt: Format = "table") -> str:
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else _cell(v) for v in row] for row in result.rows])
        return buf.getvalue()
    if fmt == "json":

        def clean(v: Any) -> Any:
            return str(v) if isinstance(v, float) and not math.isfinite(v) else v

        records = [{c: clean(v) for c, v in zip(result.columns, row, strict=True)}
                   for row in result.rows]  # fmt: skip
        return orjson.dumps(records, option=orjson.OPT_INDENT_2).decode() + "\n"
    if not result.columns:
        return "OK\n"
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    right = [_is_numeric(t) for t in result.types] if result.types else [False] * len(widths)

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w)
                 for v, w, r in zip(values, widths, right, strict=True)]  # fmt: skip
        return "  ".join(parts).rstrip()

    out = [line(list(result.columns)), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    n = len(result.rows)
    out.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(out) + "\n"
