"""The agent's ``drop_database`` job (sandbox teardown) against the real Postgres server:
drops the named database, is safe to repeat, and refuses the connection's own database."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from agent.config import AgentConfig
from agent.handlers import JobContext, JobFailed, handler_for
from shared.db.urls import postgres_url
from tests.conftest import server_url, with_database


def url_of(database: str) -> str:
    """The agent's connection setting is a URL; the suite's server URL with another path."""
    return postgres_url(server_url(), dbname=database)


def context(connection_url: str, lines: list[str]) -> JobContext:
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      connections={"main": connection_url})
    return JobContext(job_id="j", kind="drop_database", config=cfg, log=lines.append,
                      progress=lambda _: None)


def exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def test_drop_database_removes_the_sandbox_database_and_can_repeat() -> None:
    admin = server_url()
    name = f"sandbox_n10_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    connection = url_of("postgres")
    drop = handler_for("drop_database")
    lines: list[str] = []
    holder = psycopg.connect(with_database(admin, name))  # a session still connected
    try:
        assert drop({"connection": "main", "database": name}, context(connection, lines)) == {
            "database": name, "dropped": True}
    finally:
        holder.close()
    assert not exists(admin, name)
    assert drop({"connection": "main", "database": name},
                context(connection, lines))["dropped"] is True  # already gone: fine


def test_drop_database_refuses_the_connections_own_database() -> None:
    with pytest.raises(JobFailed, match="refusing"):
        handler_for("drop_database")({"connection": "main", "database": "shop"},
                                     context(url_of("shop"), []))
