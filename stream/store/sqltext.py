"""Small, conservative readers of SQL text: statement splitting and identifiers.

None of this formats values into SQL: values always travel as query parameters or as typed
insert data. These helpers cut trusted files into statements, and give
:mod:`stream.store.sqlguard` the pieces of a user query to vet.
"""

from __future__ import annotations

import re
from typing import Final

from stream.errors import StoreError

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain identifier (letters, digits, ``_``), else raise."""
    if not _IDENTIFIER.fullmatch(name):
        raise StoreError(
            f"invalid ClickHouse identifier {name!r}: use letters, digits and '_' only, "
            "starting with a letter or '_' (at most 63 characters)"
        )
    return name


def _comment_end(sql: str, i: int) -> int:
    """The index after the ``/* ... */`` comment opening at ``i`` (ClickHouse nests them)."""
    depth = 0
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def scan(sql: str) -> list[tuple[str, str]]:
    """Cut ``sql`` into ("code" | "text", chunk) pieces; comments are dropped.

    "text" pieces are string literals and quoted identifiers, so that a ``;`` or a keyword
    inside them is never taken for SQL. Comments as ClickHouse's lexer reads them: ``--``,
    ``#!`` and ``# `` to the end of the line, ``/* */`` nested.
    """
    pieces: list[tuple[str, str]] = []
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if sql.startswith(("--", "#!", "# "), i):
            pieces.append(("code", sql[start:i]))
            end = sql.find("\n", i)
            i = start = n if end < 0 else end
        elif c == "/" and sql.startswith("/*", i):
            pieces.append(("code", sql[start:i]))
            i = start = _comment_end(sql, i)
        elif c in "'\"`":
            pieces.append(("code", sql[start:i]))
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            pieces.append(("text", sql[i : j + 1]))
            i = start = j + 1
        else:
            i += 1
    pieces.append(("code", sql[start:]))
    return [p for p in pieces if p[1]]


def split_statements(sql: str) -> list[str]:
    """Split a file of ``;``-terminated statements; comments are removed, empties skipped."""
    statements: list[str] = []
    current: list[str] = []
    for kind, chunk in scan(sql):
        if kind == "text":
            current.append(chunk)
            continue
        parts = chunk.split(";")
        for k, part in enumerate(parts):
            current.append(part)
            if k < len(parts) - 1:
                statements.append("".join(current).strip())
                current = []
    statements.append("".join(current).strip())
    return [s for s in statements if s]
