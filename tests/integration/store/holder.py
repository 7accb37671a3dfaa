"""A stand-in worker for the tests: holds an embedded store and serves ``POST /sql``.

Usage: python holder.py STORE_PATH PORT. Prints ``ready`` once the store is open, and runs
until killed or until stdin closes. Like the worker, it writes its token to the folder's
``sql-token`` and serves the endpoint with the worker's checks.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from stream.config import Settings, StoreSettings
from stream.store.embedded import EmbeddedStore
from stream.store.sqlapi import run_sql_request, start_sql_token


def main() -> None:
    settings = Settings(store=StoreSettings(path=Path(sys.argv[1])))
    store = EmbeddedStore(settings.store)
    store.migrate()
    token = start_sql_token(settings)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, payload = run_sql_request(
                store, body, token=token, content_type=self.headers.get("Content-Type"),
                authorization=self.headers.get("Authorization"), origin=self.headers.get("Origin"),
            )
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()
    store.close()


if __name__ == "__main__":
    main()
