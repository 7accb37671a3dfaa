"""What the worker's ``POST /sql`` accepts: one read-only statement with no way out of the store.

The boundary is the engine's: every query the endpoint runs executes with ClickHouse's
``readonly=1`` (a chDB session opened read-only, or the setting on the server request), which
refuses writes, setting changes and most table functions. This module is the second line,
checked before anything runs, so that each refusal has a clear reason and so that what
``readonly=1`` lets through is closed as well. Measured on chDB 4.4 (ClickHouse 26.9), under
``readonly=1``:

- ``INTO OUTFILE`` still writes the file, and the scalar function ``file('/path')`` still
  reads one: both are refused here by name;
- ``SETTINGS readonly=0`` after a ``SETTINGS readonly=1`` in the same clause wins, which is
  why readonly is never appended to the query text, and why any ``SETTINGS`` is refused;
- ``file``, ``url``, ``s3``, ``remote``, ``mysql``, ``executable``, ``python`` and the other
  table functions that reach files, the network, other processes or the worker's memory are
  refused by the engine; they are refused here too, by name (:data:`DENIED_FUNCTIONS`).

The check runs twice: on the text as sent, then on ClickHouse's own formatting of it
(``formatQuerySingleLine``), so that a construct this small scanner reads differently from
ClickHouse's lexer (heredoc strings, nested comments) cannot hide a name.
"""

from __future__ import annotations

import itertools
import re
from typing import Final

from stream.store.sqltext import scan, split_statements

READ_ONLY_KEYWORDS: Final = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"}
)

#: Table functions that compute rows or read what a SELECT may read anyway: accepted.
ALLOWED_TABLE_FUNCTIONS: Final = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "primes", "generateSeries", "generate_series",
    "generateRandom", "values", "SQLStandardValues", "null", "view", "viewIfPermitted",
    "viewExplain", "merge", "loop", "format", "fuzzJSON", "fuzzQuery", "mergeTreeIndex",
    "mergeTreeProjection", "mergeTreeTextIndex", "mergeTreeAnalyzeIndexes",
    "mergeTreeAnalyzeIndexesUUID", "mergeTreeCodecBlockCounts", "timeSeriesData",
    "timeSeriesMetricFamilies", "timeSeriesMetrics", "timeSeriesSamples", "timeSeriesSelector",
    "timeSeriesTags",
})  # fmt: skip

#: Functions (table functions, and the scalar ``file``) that read files, open connections,
#: run programs, read the worker's Python objects or read another database: refused.
#: A test holds every table function chDB knows to one of the two lists, so an upgrade that
#: adds one fails until someone decides.
DENIED_FUNCTIONS: Final = frozenset({
    "file", "fileCluster", "filesystem", "url", "urlCluster", "s3", "s3Cluster", "gcs", "oss",
    "cosn", "hdfs", "hdfsCluster", "azureBlobStorage", "azureBlobStorageCluster",
    "remote", "remoteSecure", "cluster", "clusterAllReplicas",
    "mysql", "postgresql", "sqlite", "mongodb", "redis", "jdbc", "odbc", "bigquery", "ytsaurus",
    "executable", "input", "python", "arrowstream", "dictionary", "eval",
    "prometheusQuery", "prometheusQueryRange",
    "deltaLake", "deltaLakeAzure", "deltaLakeAzureCluster", "deltaLakeCluster",
    "deltaLakeLocal", "deltaLakeS3", "deltaLakeS3Cluster", "hudi", "hudiCluster",
    "iceberg", "icebergAzure", "icebergAzureCluster", "icebergCluster", "icebergHDFS",
    "icebergHDFSCluster", "icebergLocal", "icebergLocalCluster", "icebergS3", "icebergS3Cluster",
    "paimon", "paimonAzure", "paimonAzureCluster", "paimonCluster", "paimonHDFS",
    "paimonHDFSCluster", "paimonLocal", "paimonS3", "paimonS3Cluster",
})  # fmt: skip
_DENIED_LOWER: Final = frozenset(name.lower() for name in DENIED_FUNCTIONS)
_TOKEN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*|\S")


def _tokens(sql: str) -> list[tuple[str, str]]:
    """("word" | "quoted" | "string" | "punct", text) tokens; "quoted" is an unquoted name."""
    out: list[tuple[str, str]] = []
    for kind, chunk in scan(sql):
        if kind == "text":
            if chunk[0] == "'":
                out.append(("string", chunk))
            else:  # "name" or `name`: an identifier, which may name a function
                out.append(("quoted", chunk[1:-1] if len(chunk) > 1 else chunk))
            continue
        for tok in _TOKEN.findall(chunk):
            out.append(("word" if tok[0].isalpha() or tok[0] == "_" else "punct", tok))
    return out


def _denied_call(tokens: list[tuple[str, str]]) -> str | None:
    for (kind, word), (_, nxt) in itertools.pairwise(tokens):
        if kind in ("word", "quoted") and nxt == "(":
            # `db.file`(...) is a name with a dot once ClickHouse has formatted it.
            names = {word.lower(), word.rsplit(".", 1)[-1].lower()}
            if names & _DENIED_LOWER:
                return word
    return None


def read_only_problem(sql: str) -> str | None:
    """Why ``sql`` may not run on the ``/sql`` endpoint, or ``None`` if it may.

    Refused: empty text, several statements, anything but :data:`READ_ONLY_KEYWORDS` first,
    ``INTO OUTFILE``, any ``SETTINGS`` clause, and a call of a :data:`DENIED_FUNCTIONS` name
    (case-insensitive, quoted or not). The engine's ``readonly=1`` stays the boundary.
    """
    statements = split_statements(sql)
    if not statements:
        return "empty query"
    if len(statements) > 1:
        return "only one statement per request"
    tokens = _tokens(statements[0])
    words = [text.upper() for kind, text in tokens if kind == "word"]
    first = words[0] if words else ""
    if first not in READ_ONLY_KEYWORDS:
        allowed = ", ".join(sorted(READ_ONLY_KEYWORDS))
        return f"only read-only statements are accepted here ({allowed}), got {first or '?'}"
    for a, b in itertools.pairwise(words):
        if a == "INTO" and b == "OUTFILE":
            return "INTO OUTFILE is not accepted here (it writes a file on the worker's machine)"
    if "SETTINGS" in words:
        return "SETTINGS clauses are not accepted here (queries run with readonly=1)"
    if first == "WITH" and any(w in {"INSERT", "ALTER", "DROP", "TRUNCATE"} for w in words):
        return "only read-only statements are accepted here"
    name = _denied_call(tokens)
    if name is not None:
        return (f"function {name}() is not accepted here: it reaches files, the network, "
                "other programs or other databases")  # fmt: skip
    return None
