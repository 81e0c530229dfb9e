"""Agent pools, registration tokens, agents and their labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.domain.models import Agent, AgentPool
from shared.errors import NotFound
from shared.store import activity


def create_pool(conn: Connection[Any], *, name: str, description: str = "",
                actor: str) -> AgentPool:
    row = conn.execute("INSERT INTO agent_pools (name, description) VALUES (%s, %s) RETURNING *",
                       (name, description)).fetchone()
    assert row is not None
    activity.record(conn, actor=actor, action="pool.created", details={"pool": name})
    return AgentPool.from_row(row)


def get_pool(conn: Connection[Any], ref: str | UUID) -> AgentPool:
    row = conn.execute("SELECT * FROM agent_pools WHERE name = %s OR id::text = %s",
                       (str(ref), str(ref))).fetchone()
    if row is None:
        raise NotFound(f"agent pool {ref} not found", field="pool")
    return AgentPool.from_row(row)


def list_pools(conn: Connection[Any]) -> list[AgentPool]:
    return [AgentPool.from_row(r) for r in
            conn.execute("SELECT * FROM agent_pools ORDER BY name").fetchall()]


def create_registration_token(conn: Connection[Any], *, pool_id: UUID, token_hash: str,
                              expires_at: datetime, multi_use: bool, actor: str) -> UUID:
    row = conn.execute(
        "INSERT INTO registration_tokens (pool_id, token_hash, multi_use, created_by,"
        " expires_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (pool_id, token_hash, multi_use, actor, expires_at)).fetchone()
    assert row is not None
    activity.record(conn, actor=actor, action="pool.token_issued",
                    details={"poolId": str(pool_id), "multiUse": multi_use})
    return row["id"]


def consume_registration_token(conn: Connection[Any], *, token_hash: str,
                               now: datetime) -> UUID | None:
    """Use a token once (or again, if multi-use) while it is valid; return its pool id."""
    row = conn.execute(
        "UPDATE registration_tokens SET uses = uses + 1 WHERE token_hash = %s"
        " AND expires_at > %s AND (multi_use OR uses = 0) RETURNING pool_id",
        (token_hash, now)).fetchone()
    return None if row is None else row["pool_id"]


def create_agent(conn: Connection[Any], *, pool_id: UUID, name: str, key_hash: str,
                 key_expires_at: datetime, labels: list[str], version: str = "",
                 os: str = "", capacity: int = 1) -> Agent:
    row = conn.execute(
        "INSERT INTO agents (pool_id, name, key_hash, key_expires_at, version, os, capacity)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (pool_id, name, key_hash, key_expires_at, version, os, capacity)).fetchone()
    assert row is not None
    set_labels(conn, row["id"], labels)
    activity.record(conn, actor=f"agent:{row['id']}", action="agent.registered",
                    details={"poolId": str(pool_id), "name": name, "labels": sorted(labels)})
    return get_agent(conn, row["id"])


def set_labels(conn: Connection[Any], agent_id: UUID, labels: list[str]) -> None:
    conn.execute("DELETE FROM agent_labels WHERE agent_id = %s", (agent_id,))
    for label in sorted(set(labels)):
        conn.execute("INSERT INTO agent_labels (agent_id, label) VALUES (%s, %s)",
                     (agent_id, label))


_AGENT_SELECT = (
    "SELECT a.*, COALESCE(array_agg(l.label ORDER BY l.label)"
    " FILTER (WHERE l.label IS NOT NULL), '{}') AS label_list"
    " FROM agents a LEFT JOIN agent_labels l ON l.agent_id = a.id")


def _agent(row: dict[str, Any]) -> Agent:
    return Agent.from_row({**row, "labels": tuple(row["label_list"])})


def get_agent(conn: Connection[Any], agent_id: UUID) -> Agent:
    row = conn.execute(f"{_AGENT_SELECT} WHERE a.id = %s GROUP BY a.id", (agent_id,)).fetchone()
    if row is None:
        raise NotFound(f"agent {agent_id} not found", field="agent")
    return _agent(row)


def find_agent_by_key_hash(conn: Connection[Any], key_hash: str,
                           now: datetime) -> Agent | None:
    """The enabled agent whose current (or still-valid previous) key hashes to this."""
    row = conn.execute(
        f"{_AGENT_SELECT} WHERE a.enabled AND ((a.key_hash = %s AND a.key_expires_at > %s)"
        " OR (a.previous_key_hash = %s AND a.previous_key_expires_at > %s)) GROUP BY a.id",
        (key_hash, now, key_hash, now)).fetchone()
    return None if row is None else _agent(row)


def list_agents(conn: Connection[Any], pool_id: UUID) -> list[Agent]:
    rows = conn.execute(f"{_AGENT_SELECT} WHERE a.pool_id = %s GROUP BY a.id ORDER BY a.name",
                        (pool_id,)).fetchall()
    return [_agent(r) for r in rows]


def rotate_key(conn: Connection[Any], agent_id: UUID, *, new_hash: str,
               new_expires_at: datetime, grace_until: datetime) -> None:
    conn.execute(
        "UPDATE agents SET previous_key_hash = key_hash, previous_key_expires_at = %s,"
        " key_hash = %s, key_expires_at = %s WHERE id = %s",
        (grace_until, new_hash, new_expires_at, agent_id))


def record_heartbeat(conn: Connection[Any], agent_id: UUID, now: datetime) -> None:
    conn.execute("UPDATE agents SET last_heartbeat_at = %s WHERE id = %s", (now, agent_id))


def set_enabled(conn: Connection[Any], agent_id: UUID, enabled: bool, *, actor: str) -> None:
    agent = get_agent(conn, agent_id)
    conn.execute("UPDATE agents SET enabled = %s WHERE id = %s", (enabled, agent_id))
    activity.record(conn, actor=actor, action="agent.enabled" if enabled else "agent.disabled",
                    details={"agentId": str(agent_id), "poolId": str(agent.pool_id)})
