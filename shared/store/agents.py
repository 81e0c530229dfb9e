"""Agent pools, registration tokens, agents and their labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.domain.models import Agent, AgentPool
from shared.errors import NotFound
from shared.store import _paging, activity
from shared.store._paging import Key


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


def pool_key(pool: AgentPool) -> Key:
    return (pool.name,)


def agent_key(agent: Agent) -> Key:
    return (agent.name,)


def list_pools(conn: Connection[Any], *, after: Key | None = None,
               limit: int | None = None) -> list[AgentPool]:
    return [AgentPool.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM agent_pools WHERE TRUE", (), order=("name",), after_key=after,
        limit_to=limit)]


def create_registration_token(conn: Connection[Any], *, pool_id: UUID, token_hash: str,
                              expires_at: datetime, multi_use: bool, actor: str,
                              max_uses: int | None = None) -> UUID:
    row = conn.execute(
        "INSERT INTO registration_tokens (pool_id, token_hash, multi_use, created_by,"
        " expires_at, max_uses) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (pool_id, token_hash, multi_use, actor, expires_at, max_uses)).fetchone()
    assert row is not None
    activity.record(conn, actor=actor, action="pool.token_issued",
                    details={"poolId": str(pool_id), "multiUse": multi_use,
                             "maxUses": max_uses, "expiresAt": expires_at.isoformat()})
    token_id: UUID = row["id"]
    return token_id


def consume_registration_token(conn: Connection[Any], *, token_hash: str,
                               now: datetime) -> UUID | None:
    """Use a token once (or again, if multi-use, up to max_uses) while it is valid;
    return its pool id."""
    row = conn.execute(
        "UPDATE registration_tokens SET uses = uses + 1 WHERE token_hash = %s"
        " AND expires_at > %s AND ((multi_use AND (max_uses IS NULL OR uses < max_uses))"
        " OR uses = 0) RETURNING pool_id",
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
    """The unrevoked agent whose current (or still-valid previous) key hashes to this.

    A disabled agent still authenticates (it keeps heartbeating and shows as disabled);
    it is only never given work."""
    row = conn.execute(
        f"{_AGENT_SELECT} WHERE a.revoked_at IS NULL"
        " AND ((a.key_hash = %s AND a.key_expires_at > %s)"
        " OR (a.previous_key_hash = %s AND a.previous_key_expires_at > %s)) GROUP BY a.id",
        (key_hash, now, key_hash, now)).fetchone()
    return None if row is None else _agent(row)


def authenticate_and_touch(conn: Connection[Any], key_hash: str,
                           now: datetime) -> tuple[Agent, bool] | None:
    """Find the agent by key hash and record that it is alive, in one statement: any
    authenticated request is a sign of life. Returns (agent, came_online)."""
    row = conn.execute(
        "WITH found AS (SELECT id, online FROM agents WHERE revoked_at IS NULL"
        "  AND ((key_hash = %(h)s AND key_expires_at > %(now)s)"
        "   OR (previous_key_hash = %(h)s AND previous_key_expires_at > %(now)s))"
        "  FOR UPDATE)"
        " UPDATE agents a SET last_heartbeat_at = %(now)s, online = true FROM found"
        " WHERE a.id = found.id RETURNING a.*, found.online AS was_online,"
        " COALESCE((SELECT array_agg(l.label ORDER BY l.label) FROM agent_labels l"
        "  WHERE l.agent_id = a.id), '{}') AS label_list",
        {"h": key_hash, "now": now}).fetchone()
    if row is None:
        return None
    return _agent(row), not row["was_online"]


def list_agents(conn: Connection[Any], pool_id: UUID, *, after: Key | None = None,
                limit: int | None = None) -> list[Agent]:
    return [_agent(r) for r in _paging.rows(
        conn, f"{_AGENT_SELECT} WHERE a.pool_id = %s", (pool_id,), order=("a.name",),
        after_key=after, limit_to=limit, group_by="a.id")]


def rotate_key(conn: Connection[Any], agent_id: UUID, *, new_hash: str,
               new_expires_at: datetime, grace_until: datetime) -> None:
    conn.execute(
        "UPDATE agents SET previous_key_hash = key_hash, previous_key_expires_at = %s,"
        " key_hash = %s, key_expires_at = %s, key_rotated_at = now() WHERE id = %s",
        (grace_until, new_hash, new_expires_at, agent_id))


def record_agent_info(conn: Connection[Any], agent_id: UUID, *, version: str,
                      os: str) -> None:
    conn.execute("UPDATE agents SET version = %s, os = %s WHERE id = %s",
                 (version, os, agent_id))


def record_heartbeat(conn: Connection[Any], agent_id: UUID, now: datetime, *,
                     version: str | None = None, os: str | None = None) -> bool:
    """Note that the agent is alive; return True if it was offline until now."""
    row = conn.execute(
        "UPDATE agents a SET last_heartbeat_at = %s, online = true,"
        " version = COALESCE(%s, a.version), os = COALESCE(%s, a.os)"
        " FROM (SELECT online FROM agents WHERE id = %s FOR UPDATE) prev"
        " WHERE a.id = %s RETURNING prev.online AS was_online",
        (now, version, os, agent_id, agent_id)).fetchone()
    return row is not None and not row["was_online"]


def mark_offline(conn: Connection[Any], cutoff: datetime) -> list[Agent]:
    """Agents published as online whose last heartbeat is older than ``cutoff``: flip them
    to offline (each exactly once, even with several reapers) and return them."""
    rows = conn.execute(
        "UPDATE agents SET online = false WHERE id IN (SELECT id FROM agents WHERE online"
        " AND (last_heartbeat_at IS NULL OR last_heartbeat_at < %s) FOR UPDATE SKIP LOCKED)"
        " RETURNING id", (cutoff,)).fetchall()
    return [get_agent(conn, r["id"]) for r in rows]


def revoke(conn: Connection[Any], agent_id: UUID, *, actor: str, now: datetime) -> Agent:
    """Invalidate every key of the agent for good; it must register again."""
    agent = get_agent(conn, agent_id)
    conn.execute(
        "UPDATE agents SET revoked_at = %s, enabled = false, online = false,"
        " key_expires_at = LEAST(key_expires_at, %s), previous_key_hash = NULL,"
        " previous_key_expires_at = NULL WHERE id = %s", (now, now, agent_id))
    activity.record(conn, actor=actor, action="agent.revoked",
                    details={"agentId": str(agent_id), "poolId": str(agent.pool_id)})
    return get_agent(conn, agent_id)


def capable_agents(conn: Connection[Any], pool_id: UUID, demands: list[str],
                   online_since: datetime) -> dict[str, int]:
    """How many enabled agents of the pool have every demanded label: in total, online
    (heartbeat since ``online_since``) and of those, busy (no free capacity)."""
    row = conn.execute(
        "WITH capable AS (SELECT a.id, a.capacity, a.last_heartbeat_at FROM agents a"
        "  WHERE a.pool_id = %(pool)s AND a.enabled AND a.revoked_at IS NULL"
        "  AND %(demands)s::text[] <@ COALESCE((SELECT array_agg(l.label) FROM agent_labels l"
        "   WHERE l.agent_id = a.id), '{}'))"
        " SELECT count(*) AS total,"
        "  count(*) FILTER (WHERE last_heartbeat_at >= %(since)s) AS online,"
        "  count(*) FILTER (WHERE last_heartbeat_at >= %(since)s AND capacity <= (SELECT"
        "   count(*) FROM jobs j WHERE j.agent_id = capable.id AND j.status = 'leased'))"
        "   AS busy"
        " FROM capable", {"pool": pool_id, "demands": sorted(set(demands)),
                          "since": online_since}).fetchone()
    assert row is not None
    return {"total": row["total"], "online": row["online"], "busy": row["busy"]}

def set_enabled(conn: Connection[Any], agent_id: UUID, enabled: bool, *, actor: str) -> None:
    agent = get_agent(conn, agent_id)
    conn.execute("UPDATE agents SET enabled = %s WHERE id = %s", (enabled, agent_id))
    activity.record(conn, actor=actor, action="agent.enabled" if enabled else "agent.disabled",
                    details={"agentId": str(agent_id), "poolId": str(agent.pool_id)})


def lock_agent_by_name(conn: Connection[Any], pool_id: UUID, name: str,
                       ) -> dict[str, Any] | None:
    """The pool's agent of that name (id, enabled, revoked_at), locked; None if none."""
    return conn.execute("SELECT id, enabled, revoked_at FROM agents WHERE pool_id = %s"
                        " AND name = %s FOR UPDATE", (pool_id, name)).fetchone()


def agent_id_by_name(conn: Connection[Any], pool_id: UUID, name: str) -> UUID | None:
    row = conn.execute("SELECT id FROM agents WHERE pool_id = %s AND name = %s",
                       (pool_id, name)).fetchone()
    return None if row is None else row["id"]


def reregister(conn: Connection[Any], agent_id: UUID, *, key_hash: str,
               key_expires_at: datetime, version: str, os: str, capacity: int,
               now: datetime) -> None:
    """A new key for an agent registering again under its name; old keys void."""
    conn.execute(
        "UPDATE agents SET key_hash = %s, key_expires_at = %s, previous_key_hash = NULL,"
        " previous_key_expires_at = NULL, revoked_at = NULL, enabled = true,"
        " version = %s, os = %s, capacity = %s, key_rotated_at = %s WHERE id = %s",
        (key_hash, key_expires_at, version, os, capacity, now, agent_id))


def lock_keys(conn: Connection[Any], agent_id: UUID) -> dict[str, Any] | None:
    """The agent's key hashes, their expiries and last rotation request, locked."""
    return conn.execute(
        "SELECT key_hash, key_expires_at, previous_key_hash, previous_key_expires_at,"
        " rotation_request_hash FROM agents WHERE id = %s FOR UPDATE", (agent_id,)).fetchone()


def set_rotation_request(conn: Connection[Any], agent_id: UUID, request_hash: str) -> None:
    conn.execute("UPDATE agents SET rotation_request_hash = %s WHERE id = %s",
                 (request_hash, agent_id))


def key_state_for_claim(conn: Connection[Any], agent_id: UUID) -> dict[str, Any] | None:
    """Enabled, revoked and key columns, read with a share lock (a concurrent revoke
    either precedes the claim or sees its lease)."""
    return conn.execute(
        "SELECT enabled, revoked_at, key_hash, key_expires_at, previous_key_hash,"
        " previous_key_expires_at FROM agents WHERE id = %s FOR SHARE", (agent_id,)).fetchone()
