"""Postgres connection strings are parsed and written by psycopg's conninfo functions, so a
Unix-socket host (the embedded server) survives every helper as well as a TCP host."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.db.urls import postgres_url, with_database

SOCKET = "/home/me/project/.cloudops/pgdata"
TRICKY_PASSWORD = "p@ss:w/rd %20 ok"

SERVERS = {
    "tcp url": "postgresql://postgres@127.0.0.1:5432/test",
    "tcp dsn": "host=127.0.0.1 port=5432 user=postgres dbname=test",
    "socket url, host in query": f"postgresql://postgres:@/postgres?host={SOCKET}",
    "socket url, encoded host": "postgresql://postgres@%2Fhome%2Fme%2Fproject%2F.cloudops"
                                "%2Fpgdata/postgres",
    "socket dsn": f"host={SOCKET} user=postgres dbname=postgres",
}


@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
def test_with_database_keeps_the_server_and_changes_only_the_database(server: str) -> None:
    before = conninfo_to_dict(server)
    after = conninfo_to_dict(with_database(server, "cloudops_test_1"))
    assert after.pop("dbname") == "cloudops_test_1"
    before.pop("dbname", None)
    assert {k: v for k, v in after.items() if v} == {k: v for k, v in before.items() if v}


@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
def test_postgres_url_round_trips_through_libpq_parsing(server: str) -> None:
    url = postgres_url(server, dbname="demo_dev")
    assert url.startswith("postgresql://")
    parsed = conninfo_to_dict(url)
    assert parsed["dbname"] == "demo_dev"
    assert parsed["host"] == conninfo_to_dict(server)["host"]
    assert parsed["user"] == "postgres"


def test_a_socket_host_is_never_read_as_the_database_name() -> None:
    url = postgres_url(f"host={SOCKET} user=postgres dbname=postgres")
    assert conninfo_to_dict(url) == {"host": SOCKET, "user": "postgres", "dbname": "postgres"}


def test_a_password_with_url_metacharacters_survives() -> None:
    dsn = make_conninfo(host="db.example", port=6432, user="app user", password=TRICKY_PASSWORD,
                        dbname="shop", sslmode="require")
    parsed = conninfo_to_dict(postgres_url(dsn))
    assert parsed == {"host": "db.example", "port": "6432", "user": "app user",
                      "password": TRICKY_PASSWORD, "dbname": "shop", "sslmode": "require"}


def test_an_override_of_none_removes_the_part() -> None:
    url = postgres_url("postgresql://u:secret@h:5432/db", password=None)
    assert "secret" not in url
    assert conninfo_to_dict(url) == {"user": "u", "host": "h", "port": "5432", "dbname": "db"}

