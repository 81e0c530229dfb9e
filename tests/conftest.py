"""Shared fixtures: a throwaway Postgres database per test session on the configured server.

``DATABASE_URL`` names the server (CI: the machine's Postgres); unset, the embedded server
under ``.cloudops/`` is used. Either way the suite creates ``cloudops_test_<random>``,
migrates it, and drops it at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.db import Database, apply_migrations

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from shared.db.embedded import embedded_server_url

    return embedded_server_url(ROOT / ".cloudops", database="postgres")


def with_database(url: str, database: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = database
    return make_conninfo(**params)


def create_throwaway_database(prefix: str = "cloudops_test") -> tuple[str, str]:
    admin = server_url()
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin, name


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def empty_database_url() -> Iterator[str]:
    """A brand-new database with nothing in it (for migration tests)."""
    admin, name = create_throwaway_database("cloudops_empty")
    yield with_database(admin, name)
    drop_database(admin, name)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The suite's migrated throwaway database."""
    admin, name = create_throwaway_database()
    url = with_database(admin, name)
    apply_migrations(url)
    yield url
    drop_database(admin, name)


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=8).open()
    yield database
    database.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the folder it lives in, so ``-m unit`` etc. select slices."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if len(parts) > 1:
            item.add_marker(parts[0])
