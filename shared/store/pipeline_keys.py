"""Pipeline keys: named, expiring service credentials, stored only as keyed hashes.

A key (``cop_`` + 256 random bits) is shown once, when created or rotated. The table
keeps its HMAC-SHA256 under the server secret (as agent keys), so a copy of the database
can neither use nor check keys offline. A caller presenting a valid key acts as service
principal ``<name>``; role assignments name that service. Rotation issues a new key and
keeps the old one valid for a grace period only; revocation ends both at once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.agents.keys import key_hash
from shared.errors import Conflict, NotFound
from shared.store import _paging, activity
from shared.store._paging import Key

KEY_PREFIX = "cop_"


@dataclass(frozen=True)
class PipelineKey:
    id: UUID
    name: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None
    previous_expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PipelineKey:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    def as_json(self) -> dict[str, Any]:
        """The listing: never the key, never its hash."""
        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat().replace("+00:00", "Z")
        return {"id": str(self.id), "name": self.name, "createdBy": self.created_by,
                "createdAt": iso(self.created_at), "expiresAt": iso(self.expires_at),
                "rotatedAt": iso(self.rotated_at),
                "previousKeyExpiresAt": iso(self.previous_expires_at),
                "lastUsedAt": iso(self.last_used_at), "revokedAt": iso(self.revoked_at)}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create(conn: Connection[Any], secret: bytes, *, name: str, expires_at: datetime,
           actor: str) -> tuple[PipelineKey, str]:
    key = new_key()
    row = conn.execute(
        "INSERT INTO pipeline_keys (name, key_hash, created_by, expires_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING *",
        (name, key_hash(secret, key), actor, expires_at)).fetchone()
    if row is None:
        raise Conflict(f"an active pipeline key named {name} already exists; rotate or "
                       "revoke it", field="name")
    activity.record(conn, actor=actor, action="pipeline_key.created",
                    details={"keyId": str(row["id"]), "name": name,
                             "expiresAt": expires_at.isoformat()})
    return PipelineKey.from_row(row), key


def _get(conn: Connection[Any], key_id: str) -> dict[str, Any]:
    try:
        row: dict[str, Any] | None = conn.execute(
            "SELECT * FROM pipeline_keys WHERE id = %s FOR UPDATE", (UUID(key_id),)).fetchone()
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"pipeline key {key_id} not found", field="key")
    return row


def rotate(conn: Connection[Any], secret: bytes, key_id: str, *, now: datetime,
           grace: timedelta, expires_at: datetime, actor: str) -> tuple[PipelineKey, str]:
    row = _get(conn, key_id)
    if row["revoked_at"] is not None:
        raise Conflict(f"pipeline key {row['name']} is revoked", field="key")
    key = new_key()
    updated = conn.execute(
        "UPDATE pipeline_keys SET previous_hash = key_hash, previous_expires_at = %s,"
        " key_hash = %s, expires_at = %s, rotated_at = %s WHERE id = %s RETURNING *",
        (now + grace if grace > timedelta(0) else None, key_hash(secret, key), expires_at,
         now, row["id"])).fetchone()
    assert updated is not None
    activity.record(conn, actor=actor, action="pipeline_key.rotated",
                    details={"keyId": str(row["id"]), "name": row["name"],
                             "graceSeconds": int(grace.total_seconds())})
    return PipelineKey.from_row(updated), key


def revoke(conn: Connection[Any], key_id: str, *, now: datetime, actor: str) -> None:
    row = _get(conn, key_id)
    if row["revoked_at"] is not None:
        return
    conn.execute("UPDATE pipeline_keys SET revoked_at = %s, previous_hash = NULL,"
                 " previous_expires_at = NULL WHERE id = %s", (now, row["id"]))
    activity.record(conn, actor=actor, action="pipeline_key.revoked",
                    details={"keyId": str(row["id"]), "name": row["name"]})


def pipeline_key_key(key: PipelineKey) -> Key:
    return (key.revoked_at is not None, key.name, key.created_at, key.id)


def list_keys(conn: Connection[Any], *, after: Key | None = None,
              limit: int | None = None) -> list[PipelineKey]:
    """Live keys first, by name; then revoked ones."""
    return [PipelineKey.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM pipeline_keys WHERE TRUE", (),
        order=("revoked_at IS NOT NULL", "name", "created_at", "id"), after_key=after,
        limit_to=limit)]


def authenticate(conn: Connection[Any], secret: bytes, key: str, now: datetime) -> str | None:
    """The service name of a valid key (current, or previous within its grace), or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    digest = key_hash(secret, key)
    row = conn.execute(
        "UPDATE pipeline_keys SET last_used_at = %(now)s WHERE revoked_at IS NULL AND ("
        " (key_hash = %(h)s AND expires_at > %(now)s) OR"
        " (previous_hash = %(h)s AND previous_expires_at > %(now)s)) RETURNING name, key_hash,"
        " previous_hash", {"h": digest, "now": now}).fetchone()
    if row is None:
        return None
    # the index found it; compare in constant time anyway, as the agent keys do
    if not (hmac.compare_digest(row["key_hash"], digest)
            or hmac.compare_digest(row["previous_hash"] or "", digest)):
        return None
    return str(row["name"])
