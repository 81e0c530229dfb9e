"""Post-provision step of ``azd up``: the app's Postgres role, its grants, the migrations.

Connects as the deployer (the server's Entra admin) with an Entra token as password,
creates the role of the Function App's managed identity (``pgaadauth_create_principal``
on Azure; a plain role where that function does not exist, as on a test server), lets it
use the database, and applies every migration *as that role* (``options=-c role=...``),
so the app owns its tables and its own start-up migration check passes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from shared.db import apply_migrations


def ensure_app_role(admin_url: str, role: str) -> bool:
    """Create ``role`` if missing; True if created now."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            return False
        entra = conn.execute(
            "SELECT 1 FROM pg_proc WHERE proname = 'pgaadauth_create_principal'").fetchone()
        if entra:  # Azure: maps the role to the managed identity of that name
            conn.execute("SELECT * FROM pgaadauth_create_principal(%s, false, false)", (role,))
        else:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        return True


def grant_and_migrate(db_url: str, database: str, role: str) -> list[int]:
    """Let ``role`` own its schema objects, then apply migrations as ``role``."""
    ident = sql.Identifier(role)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(database), ident))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(ident))
        # membership lets the admin act as the role (SET ROLE) for the migrations below
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(ident))
    return apply_migrations(make_conninfo(db_url, options=f"-c role={role}"))


def run(environ: dict[str, str], token: Callable[[], str]) -> list[int]:
    host, database = environ["POSTGRES_HOST"], environ["POSTGRES_DATABASE"]
    role, admin = environ["POSTGRES_APP_ROLE"], environ["AZURE_PRINCIPAL_NAME"]
    base = make_conninfo(host=host, port=5432, user=admin, sslmode="require")
    ensure_app_role(make_conninfo(base, dbname="postgres", password=token()), role)
    return grant_and_migrate(make_conninfo(base, dbname=database, password=token()),
                             database, role)


def main() -> int:
    from azure.identity import DefaultAzureCredential

    from shared.db.entra import EntraPasswordProvider

    provider = EntraPasswordProvider(DefaultAzureCredential())
    applied = run(dict(os.environ), provider)
    print(f"postprovision: migrations applied: {applied or 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
