"""The worker's ``POST /sql`` endpoint, as a pure function, its client, and its token.

With the embedded store the worker owns the chDB folder, so ``tidewatch sql`` asks the
worker to run the query. The web server listens on localhost only, but any web page the
operator opens can send requests there, so the endpoint takes nothing on trust:

- a request from a web page (it carries ``Origin``) is refused, and so is any request that
  is not ``Content-Type: application/json`` (a page can send ``text/plain`` without asking
  the browser first; ``application/json`` needs a CORS preflight, which the worker denies);
- ``Authorization: Bearer <token>`` must carry the worker's token (compared in constant time):
  ``worker.sql_token`` if set, else a random one the worker writes at start-up to
  :func:`token_path` (mode 0600), where ``tidewatch sql`` reads it;
- the query passes :func:`~stream.store.sqlguard.read_only_problem` on its text and on
  ClickHouse's formatting of it, then runs with ``readonly=1`` set by the engine.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final

import orjson

from stream.config import Settings
from stream.errors import StoreError
from stream.store.base import Store
from stream.store.output import FORMATS, Format, render
from stream.store.sqlguard import read_only_problem

log = logging.getLogger(__name__)

TOKEN_FILE: Final = "sql-token"


def token_path(settings: Settings) -> Path:
    """Where the worker writes its generated ``/sql`` token.

    With the embedded store, in the store's folder beside its lock: ``tidewatch sql`` finds
    the worker that holds the folder there, so the two always agree. With a server store
    (the CLI queries the server itself), under the worker's data folder.
    """
    if settings.store.kind == "embedded":
        return settings.store.path / TOKEN_FILE
    return settings.worker.data_dir / settings.worker.app_id / TOKEN_FILE


def start_sql_token(settings: Settings) -> str:
    """The token this worker's ``/sql`` requires, made at start-up.

    ``worker.sql_token`` when set; otherwise a new random token each start, written to
    :func:`token_path` readable by the worker's user only. The log names the file, never
    the token.
    """
    if settings.worker.sql_token is not None:
        log.info("POST /sql requires the token set in worker.sql_token")
        return settings.worker.sql_token.get_secret_value()
    token = secrets.token_urlsafe(32)
    path = token_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{TOKEN_FILE}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("POST /sql requires the token in %s (mode 0600; tidewatch sql reads it)", path)
    return token


def read_sql_token(settings: Settings) -> str:
    """The token ``tidewatch sql`` sends: ``worker.sql_token``, else the worker's file."""
    if settings.worker.sql_token is not None:
        return settings.worker.sql_token.get_secret_value()
    path = token_path(settings)
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise StoreError(
            f"cannot read the worker's /sql token from {path}: {exc}. Run tidewatch sql as the "
            "worker's user, with its settings, or set worker.sql_token for both"
        ) from exc


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _check_request(
    token: str, content_type: str | None, authorization: str | None, origin: str | None
) -> tuple[int, bytes] | None:
    if origin is not None:
        return 403, b"refused: requests from a web page (with an Origin header) are not accepted\n"
    if _media_type(content_type) != "application/json":
        return 415, b"refused: the request must be Content-Type: application/json\n"
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return 401, (b"refused: missing or wrong token (Authorization: Bearer <token>; "
                     b"tidewatch sql sends it, see docs/store.md)\n")  # fmt: skip
    return None


def run_sql_request(
    store: Store, body: bytes, *, token: str, content_type: str | None,
    authorization: str | None, origin: str | None = None,
) -> tuple[int, bytes]:  # fmt: skip
    """Handle ``{"sql": str, "format": "table"|"csv"|"json", "params": {...}}``.

    Returns ``(HTTP status, response body)``: 200 with the rendered result; 403 from a web
    page, 415 without ``application/json``, 401 without the token; 400 for a malformed
    request or a query that fails; 403 for a query that is refused (the body says why).
    """
    refused = _check_request(token, content_type, authorization, origin)
    if refused is not None:
        return refused
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
    sql: str = request["sql"]
    try:
        problem = read_only_problem(sql) or read_only_problem(store.formatted(sql))
    except StoreError as exc:
        return 400, f"ClickHouse cannot parse the query: {exc}\n".encode()
    if problem:
        return 403, f"refused: {problem}\n".encode()
    try:
        result = store.query_read_only(sql, params)
    except StoreError as exc:
        if "(READONLY)" in str(exc):
            return 403, f"refused by ClickHouse (the query runs with readonly=1): {exc}\n".encode()
        return 400, f"{exc}\n".encode()
    return 200, render(result, fmt).encode()


def post_sql(
    url: str, sql: str, fmt: Format = "table", params: dict[str, Any] | None = None, *,
    token: str, timeout_s: float = 60.0,
) -> str:  # fmt: skip
    """Send a query to a worker's ``/sql`` endpoint; raises StoreError with its message."""
    body = orjson.dumps({"sql": sql, "format": fmt, "params": params or {}})
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read()).decode("utf-8")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise StoreError(f"the worker refused the query ({exc.code}): {detail}") from exc
    except OSError as exc:
        raise StoreError(f"cannot reach the worker at {url}: {exc}") from exc
