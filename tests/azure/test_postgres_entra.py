"""Postgres Entra-token login: a fake credential's token travels as the password to a real
Postgres behind a front that checks it (pg_auth_proxy: the machine's server trusts local
logins, so the check Azure's server makes is reproduced in front of it)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from azure.core.credentials import AccessToken
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.db import Database
from shared.db.entra import (
    POSTGRES_SCOPE,
    EntraPasswordProvider,
    entra_conninfo,
    entra_database,
)
from shared.settings import Settings
from tests.azure.pg_auth_proxy import PasswordProxy


class FakeCredential:
    """Issues tokens tok-1, tok-2, ... each valid ``lifetime`` seconds from the fake now."""

    def __init__(self, now: list[float], lifetime: float = 3600) -> None:
        self.now = now
        self.lifetime = lifetime
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"tok-{len(self.scopes)}", int(self.now[0] + self.lifetime))


@dataclass
class EntraServer:
    url: str
    role: str
    valid: set[str]
    proxy: PasswordProxy


@pytest.fixture
def entra_server(database_url: str) -> Iterator[EntraServer]:
    role = f"entra_app_{secrets.token_hex(3)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    params = conninfo_to_dict(database_url)
    host, port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
    upstream: tuple[str, int] | str = (
        f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port))
    valid: set[str] = set()
    proxy = PasswordProxy(upstream, lambda user, pw: user == role and pw in valid)
    url = make_conninfo(database_url, host="127.0.0.1", port=proxy.port, user=role,
                        sslmode="prefer")
    url = make_conninfo(url, password=None) if "password" in conninfo_to_dict(url) else url
    yield EntraServer(url, role, valid, proxy)
    proxy.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE usename = %s", (role,))
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_pool_logs_in_with_the_token_from_the_credential(entra_server: EntraServer) -> None:
    now = [1_000_000.0]
    credential = FakeCredential(now)
    entra_server.valid.add("tok-1")
    db = Database(entra_server.url, min_size=1, max_size=2,
                  password=EntraPasswordProvider(credential, now=lambda: now[0])).open()
    try:
        assert db.fetch_one("SELECT current_user AS who") == {"who": entra_server.role}
    finally:
        db.close()
    assert credential.scopes[0] == (POSTGRES_SCOPE,)
    assert (entra_server.role, "tok-1") in entra_server.proxy.seen


def test_new_connections_get_a_refreshed_token_before_the_old_one_expires(
        entra_server: EntraServer) -> None:
    now = [1_000_000.0]
    credential = FakeCredential(now, lifetime=3600)
    entra_server.valid.update({"tok-1", "tok-2"})
    provider = EntraPasswordProvider(credential, refresh_margin=300, now=lambda: now[0])
    db = Database(entra_server.url, min_size=1, max_size=2, password=provider).open()
    try:
        now[0] += 3600 - 299  # inside the refresh margin of tok-1
        entra_server.valid.discard("tok-1")  # and the server no longer takes it
        held = threading.Event()
        release = threading.Event()

        def hold_one() -> None:
            with db.pool.connection():
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold_one)
        holder.start()
        held.wait(10)
        try:  # the pool must open a second connection, which needs the fresh token
            assert db.fetch_one("SELECT current_user AS who") == {"who": entra_server.role}
        finally:
            release.set()
            holder.join()
    finally:
        db.close()
    assert [pw for _, pw in entra_server.proxy.seen][-1] == "tok-2"
    assert len(credential.scopes) == 2


def test_a_wrong_token_is_refused_by_the_server(entra_server: EntraServer) -> None:
    entra_server.valid.add("the-real-token")
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(entra_server.url, password="stale-token", connect_timeout=5).close()
    # psycopg reports failed logins without a SQLSTATE; the server's message says why
    assert "password authentication failed" in str(info.value)
    assert entra_server.proxy.seen[-1] == (entra_server.role, "stale-token")


def test_provider_reuses_a_token_until_the_refresh_margin() -> None:
    now = [0.0]
    credential = FakeCredential(now, lifetime=3600)
    provider = EntraPasswordProvider(credential, refresh_margin=300, now=lambda: now[0])
    assert provider() == "tok-1"
    now[0] = 3299
    assert provider() == "tok-1"
    now[0] = 3300
    assert provider() == "tok-2"


def test_migration_conninfo_carries_a_token_and_the_entra_user(
        entra_server: EntraServer) -> None:
    now = [0.0]
    entra_server.valid.add("tok-1")
    conninfo = entra_conninfo(entra_server.url, EntraPasswordProvider(FakeCredential(now)),
                              user=entra_server.role)
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (entra_server.role,)


def test_entra_database_logs_in_as_the_configured_entra_user(
        entra_server: EntraServer) -> None:
    now = [time.time()]  # entra_database's provider runs on the real clock
    entra_server.valid.add("tok-1")
    url = make_conninfo(entra_server.url, user="someone_else")
    settings = Settings.from_env({"CLOUDOPS_DATABASE_ENTRA_USER": entra_server.role})
    db = entra_database(settings, url, FakeCredential(now), min_size=1, max_size=1).open()
    try:
        assert db.fetch_one("SELECT current_user AS who") == {"who": entra_server.role}
    finally:
        db.close()
