"""The composition root for the function app: settings → adapters, built once at start-up.

Functions call ``services()``; the first call reads the settings, opens the database pool
and applies migrations. Tests build their own ``Services`` with fakes where needed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.clock import Clock, SystemClock
from shared.db import Database, apply_migrations
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.artifacts import ArtifactStore
    from shared.bus import TaskBus
    from shared.logs import LogStore
    from shared.realtime import Realtime

log = logging.getLogger("cloudops")


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    bus: TaskBus
    logs: LogStore
    realtime: Realtime
    artifacts: ArtifactStore

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True,
                      clock: Clock | None = None) -> Services:
        from shared.artifacts import make_artifact_store
        from shared.bus import make_bus
        from shared.logs import make_log_store
        from shared.realtime import make_realtime
        from shared.realtime.publisher import QueuedRealtime
        from shared.telemetry import configure_telemetry

        configure_telemetry(settings)
        url = resolve_database_url(settings)
        db, migrate_url = _database(settings, url)
        if migrate:
            applied = apply_migrations(migrate_url)
            if applied:
                log.info("applied migrations %s", applied)
        db.open(wait=False)
        clock = clock or SystemClock()
        return cls(settings=settings, db=db, clock=clock, bus=make_bus(settings),
                   logs=make_log_store(settings, db, clock),
                   realtime=QueuedRealtime(make_realtime(settings)),
                   artifacts=make_artifact_store(settings, clock))

    def close(self) -> None:
        for closeable in (self.bus, self.realtime, self.logs, self.artifacts):
            close = getattr(closeable, "close", None)
            if close is not None:
                close()
        self.db.close()


def _database(settings: Settings, url: str) -> tuple[Database, str]:
    """The pool, and a URL for migrations; in Azure with an Entra database user both log
    in with a fresh token as password."""
    if settings.mode != "azure" or not settings.database_entra_user:
        return Database(url, max_size=settings.db_pool_max), url
    from shared.db.entra import entra_conninfo, entra_database

    db = entra_database(settings, url, max_size=settings.db_pool_max)
    assert db.password is not None  # entra_database always logs in with a token
    return db, entra_conninfo(db.url, db.password)


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    if settings.mode == "azure":  # pragma: no cover - Settings validation forbids it
        raise RuntimeError("DATABASE_URL is required in azure mode")
    from shared.db.embedded import embedded_server_url

    return embedded_server_url(settings.home)


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process-wide services, built on first use from the environment."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = Services.from_settings(Settings.from_env())
    return _services


def install(instance: Services | None) -> None:
    """Replace the process-wide services (tests, the local host's composition)."""
    global _services
    with _lock:
        _services = instance
