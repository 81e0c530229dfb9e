"""Key rotation that survives a lost answer.

The agent names each rotation with a random request id. The new key is derived from the
server secret, the agent, that id and the key being replaced, so the same request sent
again (its answer was lost on the way) with the rotated-out key, within the grace
window, gets the very same new key back; nothing but its hash is stored. Any other
request with a rotated-out key is still refused, so an old key cannot mint new ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from psycopg import Connection

from shared.agents.keys import KEY_PREFIX, key_hash
from shared.agents.policy import AgentPolicy
from shared.agents.registration import IssuedKey
from shared.domain.models import Agent
from shared.errors import Unauthorized
from shared.store import activity
from shared.store import agents as agent_store


def _derived_key(secret: bytes, agent: Agent, request_id: str, replaced_hash: str) -> str:
    digest = hmac.new(secret, f"rotation:{agent.id}:{request_id}:{replaced_hash}".encode(),
                      hashlib.sha256).digest()
    return KEY_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def rotate_key_once(conn: Connection[Any], secret: bytes, policy: AgentPolicy, *,
                    agent: Agent, presented_key: str, request_id: str,
                    now: datetime) -> tuple[IssuedKey, datetime]:
    """Rotate with the current key, or repeat the answer to this same request; returns
    the key and until when the replaced one stays valid."""
    row = agent_store.lock_keys(conn, agent.id)
    presented = key_hash(secret, presented_key)
    request_hash = key_hash(secret, f"rotation-request:{agent.id}:{request_id}")
    if row is None:
        raise Unauthorized("only the agent's current key may be rotated")
    if (row["rotation_request_hash"] == request_hash and row["previous_key_hash"] == presented
            and row["previous_key_expires_at"] is not None
            and row["previous_key_expires_at"] > now):
        key = _derived_key(secret, agent, request_id, presented)
        if key_hash(secret, key) == row["key_hash"]:
            return (IssuedKey(agent, key, row["key_expires_at"]),
                    row["previous_key_expires_at"])
    if row["key_hash"] != presented:
        raise Unauthorized("only the agent's current key may be rotated")
    key = _derived_key(secret, agent, request_id, presented)
    expires_at = now + policy.key_lifetime
    grace_until = now + policy.rotation_grace
    agent_store.rotate_key(conn, agent.id, new_hash=key_hash(secret, key),
                           new_expires_at=expires_at, grace_until=grace_until)
    agent_store.set_rotation_request(conn, agent.id, request_hash)
    activity.record(conn, actor=f"agent:{agent.name}", action="agent.key_rotated",
                    details={"agentId": str(agent.id), "poolId": str(agent.pool_id)})
    return IssuedKey(agent_store.get_agent(conn, agent.id), key, expires_at), grace_until
