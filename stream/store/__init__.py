"""Results storage in ClickHouse: chDB in a local folder, or a ClickHouse server, same SQL.

``open_store(settings)`` returns the :class:`Store` the settings ask for; call ``migrate()``
at start-up. Tables and views are created by ``clickhouse/migrations/*.sql``.
"""

from __future__ import annotations

from stream.config import Settings, StoreSettings
from stream.store.base import QueryResult, Store

__all__ = ["QueryResult", "Store", "open_store"]


def open_store(settings: Settings | StoreSettings) -> Store:
    """The embedded (chDB) or server (clickhouse-connect) store ``settings.store`` names."""
    store_settings = settings.store if isinstance(settings, Settings) else settings
    if store_settings.kind == "server":
        from stream.store.server import ServerStore

        return ServerStore(store_settings)
    from stream.store.embedded import EmbeddedStore

    return EmbeddedStore(store_settings)
