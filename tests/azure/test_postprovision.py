"""The post-provision hook against a real Postgres: it creates the app role, and the
migrations it applies as that role leave the app owning every table."""

from __future__ import annotations

import secrets

import psycopg
from psycopg import sql

from infra.hooks.postprovision import ensure_app_role, grant_and_migrate
from shared.db.migrate import load_migrations
from tests.conftest import create_throwaway_database, drop_database, with_database


def test_hook_creates_the_role_and_migrates_as_it() -> None:
    admin, name = create_throwaway_database("cloudops_hook")
    role = f"id_cloudops_{secrets.token_hex(3)}"
    url = with_database(admin, name)
    try:
        assert ensure_app_role(admin, role) is True
        assert ensure_app_role(admin, role) is False
        applied = grant_and_migrate(url, name, role)
        assert applied == [m.version for m in load_migrations()]
        with psycopg.connect(url) as conn:
            owners = {r[0] for r in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert owners == {role}
        assert grant_and_migrate(url, name, role) == []  # re-provisioning is a no-op
    finally:
        drop_database(admin, name)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
