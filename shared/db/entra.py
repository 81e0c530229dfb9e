"""Postgres Entra ID (Azure AD) authentication: an access token as the password.

Azure Database for PostgreSQL Flexible Server accepts a token for the scope below as the
password of the Entra principal's role (the managed identity's name). Tokens live about
an hour, so the provider caches one and fetches a new one ``refresh_margin`` before it
expires; ``Database(url, password=provider)`` asks for it on every new connection, and the
pool's ``max_lifetime`` (50 min) retires connections before a server would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from psycopg.conninfo import make_conninfo

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

    from shared.db._database import Database
    from shared.settings import Settings

POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


class EntraPasswordProvider:
    """A callable returning a valid Entra token for Postgres, refreshed before expiry."""

    def __init__(self, credential: TokenCredential, *, refresh_margin: float = 300.0,
                 now: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._margin = refresh_margin
        self._now = now
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - self._margin <= self._now():
                self._token = self._credential.get_token(POSTGRES_SCOPE)
            return self._token.token


def entra_conninfo(url: str, password: Callable[[], str], user: str | None = None) -> str:
    """``url`` with a fresh token as password (and the Entra role as user, if given), for
    one-off connections such as applying migrations."""
    extra: dict[str, Any] = {"password": password()}
    if user:
        extra["user"] = user
    return make_conninfo(url, **extra)


def entra_database(settings: Settings, url: str, credential: TokenCredential | None = None,
                   **pool: Any) -> Database:
    """A ``Database`` that logs in as ``CLOUDOPS_DATABASE_ENTRA_USER`` with tokens."""
    from shared.db._database import Database

    if credential is None:
        from shared.azure_credential import azure_credential

        credential = azure_credential(settings)
    if settings.database_entra_user:
        url = make_conninfo(url, user=settings.database_entra_user)
    return Database(url, password=EntraPasswordProvider(credential), **pool)
