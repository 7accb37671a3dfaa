"""Small, conservative readers of SQL text: statement splitting, identifiers, read-only checks.

None of this formats values into SQL: values always travel as query parameters or as typed
insert data. These helpers only cut trusted files into statements and vet user queries for
the worker's read-only endpoint.
"""

from __future__ import annotations

import itertools
import re
from typing import Final

from stream.errors import StoreError

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
READ_ONLY_KEYWORDS: Final = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain identifier (letters, digits, ``_``), else raise."""
    if not _IDENTIFIER.fullmatch(name):
        raise StoreError(
            f"invalid ClickHouse identifier {name!r}: use letters, digits and '_' only, "
            "starting with a letter or '_' (at most 63 characters)"
        )
    return name


def _scan(sql: str) -> list[tuple[str, str]]:
    """Cut ``sql`` into ("code" | "text", chunk) pieces; comments are dropped.

    "text" pieces are string literals and quoted identifiers, so that a ``;`` or a keyword
    inside them is never taken for SQL.
    """
    pieces: list[tuple[str, str]] = []
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if sql.startswith("--", i) or sql.startswith("#!", i):
            pieces.append(("code", sql[start:i]))
            end = sql.find("\n", i)
            i = start = n if end < 0 else end
        elif c == "/" and sql.startswith("/*", i):
            pieces.append(("code", sql[start:i]))
            end = sql.find("*/", i + 2)
            i = start = n if end < 0 else end + 2
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
    for kind, chunk in _scan(sql):
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


def read_only_problem(sql: str) -> str | None:
    """Why ``sql`` is not a single read-only statement, or ``None`` if it is.

    A keyword check, not a sandbox: the endpoint using it must only listen on localhost.
    """
    statements = split_statements(sql)
    if not statements:
        return "empty query"
    if len(statements) > 1:
        return "only one statement per request"
    code = " ".join(chunk for kind, chunk in _scan(statements[0]) if kind == "code")
    words = re.findall(r"[A-Za-z_]+", code)
    first = words[0].upper() if words else ""
    if first not in READ_ONLY_KEYWORDS:
        allowed = ", ".join(sorted(READ_ONLY_KEYWORDS))
        return f"only read-only statements are accepted here ({allowed}), got {first or '?'}"
    upper = [w.upper() for w in words]
    for a, b in itertools.pairwise(upper):
        if a == "INTO" and b == "OUTFILE":
            return "INTO OUTFILE is not accepted here"
    if first == "WITH" and any(w in {"INSERT", "ALTER", "DROP", "TRUNCATE"} for w in upper):
        return "only read-only statements are accepted here"
    return None
