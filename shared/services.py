"""The composition root for the function app: settings → adapters, built once at start-up.

Functions call ``services()``; the first call reads the settings, opens the database pool
and applies migrations. Tests build their own ``Services`` with fakes where needed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from shared.clock import Clock, SystemClock
from shared.db import Database, apply_migrations
from shared.settings import Settings

log = logging.getLogger("cloudops")


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> Services:
        url = resolve_database_url(settings)
        if migrate:
            applied = apply_migrations(url)
            if applied:
                log.info("applied migrations %s", applied)
        db = Database(url, max_size=settings.db_pool_max).open(wait=False)
        return cls(settings=settings, db=db, clock=SystemClock())

    def close(self) -> None:
        self.db.close()


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
