"""Registration tokens, agent registration, authentication and key rotation.

An admin issues a short-lived token for a pool; an agent trades it (once, or up to the
``maxUses`` it was created with) for an agent id and an API key. The key is returned exactly
once and stored as an HMAC; it expires, and the agent rotates it before then: the new
key is returned once, and the old one keeps working for a short grace period so a lost
answer never locks the agent out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.agents.keys import key_hash, new_agent_key, new_registration_token
from shared.agents.policy import AgentPolicy
from shared.domain.models import Agent, AgentPool
from shared.errors import Conflict, ConstraintViolation, Unauthorized
from shared.store import activity
from shared.store import agents as agent_store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LABEL = re.compile(r"^[A-Za-z0-9._:=-]{1,100}$")
MAX_LABELS = 64


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    id: UUID
    pool: AgentPool
    expires_at: datetime
    multi_use: bool
    max_uses: int | None


@dataclass(frozen=True)
class IssuedKey:
    agent: Agent
    key: str  # shown once
    expires_at: datetime


def check_labels(labels: list[str]) -> list[str]:
    if len(labels) > MAX_LABELS:
        raise ConstraintViolation(f"at most {MAX_LABELS} labels", field="labels")
    for label in labels:
        if not LABEL.fullmatch(label):
            raise ConstraintViolation(
                f"label {label[:100]!r} must be 1-100 of A-Z a-z 0-9 . _ : = -", field="labels")
    return sorted(set(labels))


def issue_token(conn: Connection[Any], secret: bytes, *, pool: AgentPool, actor: str,
                now: datetime, ttl: timedelta, multi_use: bool = False,
                max_uses: int | None = None) -> IssuedToken:
    token = new_registration_token()
    expires_at = now + ttl
    token_id = agent_store.create_registration_token(
        conn, pool_id=pool.id, token_hash=key_hash(secret, token), expires_at=expires_at,
        multi_use=multi_use, actor=actor, max_uses=max_uses if multi_use else None)
    return IssuedToken(token, token_id, pool, expires_at, multi_use,
                       max_uses if multi_use else None)


def register_agent(conn: Connection[Any], secret: bytes, policy: AgentPolicy, *, token: str,
                   name: str, labels: list[str], version: str, os: str, capacity: int,
                   now: datetime) -> IssuedKey:
    """Trade a registration token for an agent and its first key.

    An agent re-registering under a name its pool already knows replaces that agent's
    keys and labels (a reinstalled machine keeps its identity and history) — unless that
    agent was revoked or disabled: registering never brings one back (409; an admin
    enables a disabled agent, a revoked one stays revoked).
    """
    if not _NAME.fullmatch(name):
        raise ConstraintViolation("name must be 1-100 of A-Z a-z 0-9 . _ - and start with a"
                                  " letter or digit", field="name")
    labels = check_labels(labels)
    pool_id = agent_store.consume_registration_token(
        conn, token_hash=key_hash(secret, token), now=now)
    if pool_id is None:
        raise Unauthorized("the registration token is not valid: unknown, expired or used up")
    key = new_agent_key()
    expires_at = now + policy.key_lifetime
    existing = agent_store.lock_agent_by_name(conn, pool_id, name)
    if existing is not None and (existing["revoked_at"] is not None or not existing["enabled"]):
        state = "revoked" if existing["revoked_at"] is not None else "disabled"
        remedy = ("register under another name" if state == "revoked"
                  else "a global admin enables it first")
        raise Conflict(f"agent {name} of this pool is {state}; registering does not bring it"
                       f" back: {remedy}", field="name")
    if existing is None:
        agent = agent_store.create_agent(
            conn, pool_id=pool_id, name=name, key_hash=key_hash(secret, key),
            key_expires_at=expires_at, labels=labels, version=version, os=os,
            capacity=capacity)
    else:
        agent_store.reregister(conn, existing["id"], key_hash=key_hash(secret, key),
                               key_expires_at=expires_at, version=version, os=os,
                               capacity=capacity, now=now)
        agent_store.set_labels(conn, existing["id"], labels)
        activity.record(conn, actor=f"agent:{name}", action="agent.reregistered",
                        details={"agentId": str(existing["id"]), "poolId": str(pool_id),
                                 "labels": labels})
        agent = agent_store.get_agent(conn, existing["id"])
    return IssuedKey(agent, key, expires_at)


def authenticate(conn: Connection[Any], secret: bytes, key: str | None,
                 now: datetime) -> tuple[Agent, bool]:
    """The agent owning this key, and whether this request brought it back online.

    Every authenticated request counts as a sign of life, so an idle agent whose long
    poll is held needs no separate heartbeats. Failures all get the same Unauthorized
    answer, so a caller learns nothing about which keys exist."""
    if not key:
        raise Unauthorized("an agent key is required: X-CloudOps-Agent-Key: <agent key>")
    found = agent_store.authenticate_and_touch(conn, key_hash(secret, key), now)
    if found is None:
        raise Unauthorized("the agent key is not valid: unknown, expired, revoked or"
                           " rotated out")
    return found


def rotate_key(conn: Connection[Any], secret: bytes, policy: AgentPolicy, *, agent: Agent,
               presented_key: str, now: datetime) -> IssuedKey:
    """Issue a new key; the presented one stays valid for the grace period only.

    Rotating with an already rotated-out (grace) key is refused: only the current key
    may rotate, so a stolen old key cannot mint new ones.
    """
    row = agent_store.lock_keys(conn, agent.id)
    if row is None or row["key_hash"] != key_hash(secret, presented_key):
        raise Unauthorized("only the agent's current key may be rotated")
    key = new_agent_key()
    expires_at = now + policy.key_lifetime
    agent_store.rotate_key(conn, agent.id, new_hash=key_hash(secret, key),
                           new_expires_at=expires_at, grace_until=now + policy.rotation_grace)
    activity.record(conn, actor=f"agent:{agent.name}", action="agent.key_rotated",
                    details={"agentId": str(agent.id), "poolId": str(agent.pool_id)})
    return IssuedKey(agent_store.get_agent(conn, agent.id), key, expires_at)
