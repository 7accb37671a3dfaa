"""``tidewatch sql`` and ``tidewatch migrate``.

With the embedded store, ``sql`` opens the folder itself unless a worker holds it; then the
query goes to that worker's ``POST /sql`` endpoint (read-only statements only, with the
worker's token: see :mod:`stream.store.sqlapi`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stream.config import Settings, load_settings
from stream.errors import StoreError
from stream.store import open_store
from stream.store.lock import lock_holder
from stream.store.output import FORMATS, Format, render
from stream.store.sqlapi import post_sql, read_sql_token


def add_store_commands(subparsers: Any) -> None:
    """Add ``sql`` and ``migrate`` to an ``argparse`` subparsers object."""
    sql = subparsers.add_parser(
        "sql",
        help="run a SQL query against the results store",
        description="Run one SQL statement against the store (tables: feature_drift, "
        "window_metrics, alerts; views: feature_drift_latest, window_metrics_latest, "
        "alerts_current). Values go in as parameters: "
        "WHERE model_id = {model:String} with --param model=churn.",
    )
    sql.add_argument("query", help="the SQL statement")
    sql.add_argument("--format", choices=FORMATS, default="table", help="output (default: table)")
    sql.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a query parameter for {NAME:Type}; repeatable",
    )  # fmt: skip
    sql.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    sql.set_defaults(func=_sql)

    migrate = subparsers.add_parser(
        "migrate", help="create the results database and apply pending migrations"
    )
    migrate.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    migrate.set_defaults(func=_migrate)


def _params(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise StoreError(f"--param expects NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def run_sql(settings: Settings, query: str, fmt: Format = "table",
            params: dict[str, str] | None = None) -> str:  # fmt: skip
    """The text ``tidewatch sql`` prints; goes through the worker if it holds the folder."""
    if settings.store.kind == "embedded":
        holder = lock_holder(settings.store.path.resolve())
        if holder is not None:
            if not settings.worker.web_enabled:
                raise StoreError(
                    f"the embedded store {settings.store.path} is held by process {holder} and "
                    "its web server is disabled (worker.web_enabled), so it cannot take queries"
                )
            url = f"http://127.0.0.1:{settings.worker.web_port}/sql"
            return post_sql(url, query, fmt, params, token=read_sql_token(settings))
    with open_store(settings) as store:
        try:
            return render(store.query(query, params), fmt)
        except StoreError as exc:
            if "UNKNOWN_TABLE" in str(exc):
                raise StoreError(f"{exc}\n(no schema yet? run `tidewatch migrate`)") from exc
            raise


def _sql(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    sys.stdout.write(run_sql(settings, args.query, args.format, _params(args.param)))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with open_store(settings) as store:
        applied = store.migrate()
    where = settings.store.path if settings.store.kind == "embedded" else "the server"
    if applied:
        print(f"applied to {settings.store.database} in {where}: {', '.join(applied)}")
    else:
        print(f"{settings.store.database} in {where} is up to date")
    return 0
