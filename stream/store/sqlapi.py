"""The worker's ``POST /sql`` endpoint, as a pure function, and its client.

With the embedded store the worker owns the chDB folder, so ``tidewatch sql`` asks the
worker to run the query. The endpoint only takes single read-only statements; it is a
keyword check, not a sandbox, so the worker's web server must only listen on localhost.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

from stream.errors import StoreError
from stream.store.base import Store
from stream.store.output import FORMATS, Format, render
from stream.store.sqltext import read_only_problem


def run_sql_request(store: Store, body: bytes) -> tuple[int, bytes]:
    """Handle ``{"sql": str, "format": "table"|"csv"|"json", "params": {...}}``.

    Returns ``(HTTP status, response body)``: 200 with the rendered result, 400 when the
    request or the query is refused or fails (the body says why).
    """
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return 400, f"request body is not JSON: {exc}\n".encode()
    if not isinstance(request, dict) or not isinstance(request.get("sql"), str):
        return 400, b'request body must be a JSON object with a string "sql"\n'
    fmt = request.get("format", "table")
    if fmt not in FORMATS:
        return 400, f"format must be one of {', '.join(FORMATS)}\n".encode()
    params = request.get("params") or {}
    if not isinstance(params, dict):
        return 400, b'"params" must be a JSON object\n'
    problem = read_only_problem(request["sql"])
    if problem:
        return 400, f"refused: {problem}\n".encode()
    try:
        result = store.query(request["sql"], params)
    except StoreError as exc:
        return 400, f"{exc}\n".encode()
    return 200, render(result, fmt).encode()


def post_sql(
    url: str, sql: str, fmt: Format = "table", params: dict[str, Any] | None = None,
    timeout_s: float = 60.0,
) -> str:  # fmt: skip
    """Send a query to a worker's ``/sql`` endpoint; raises StoreError with its message."""
    body = orjson.dumps({"sql": sql, "format": fmt, "params": params or {}})
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read()).decode("utf-8")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise StoreError(f"the worker refused the query ({exc.code}): {detail}") from exc
    except OSError as exc:
        raise StoreError(f"cannot reach the worker at {url}: {exc}") from exc
