"""The activity (audit) log: who did what, where, when."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.auth.principal import display_name
from shared.domain.models import ActivityEntry
from shared.redact import redact_json


def record(conn: Connection[Any], *, actor: str, action: str, project_id: UUID | None = None,
           environment_id: UUID | None = None, task_id: UUID | None = None,
           details: dict[str, Any] | None = None) -> ActivityEntry:
    """Append an entry; URLs anywhere in ``details`` lose their key-like query values."""
    row = conn.execute(
        "INSERT INTO activity_log (actor, actor_name, action, project_id, environment_id,"
        " task_id, details) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (actor, display_name(actor), action, project_id, environment_id, task_id,
         Jsonb(redact_json(details or {}))),
    ).fetchone()
    assert row is not None
    return ActivityEntry.from_row(row)


def list_activity(conn: Connection[Any], *, project_id: UUID | None = None,
                  actor: str | None = None, since: datetime | None = None,
                  task_id: UUID | None = None, before_id: int | None = None,
                  limit: int = 50) -> list[ActivityEntry]:
    """Newest first; ``before_id`` is the cursor (exclusive)."""
    clauses, params = ["TRUE"], list[object]()
    for column, value in (("project_id", project_id), ("task_id", task_id)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if actor is not None:  # a search: the stable id, or the name shown beside it
        clauses.append("(actor = %s OR actor_name = %s)")
        params.extend([actor, actor])
    if since is not None:
        clauses.append("at >= %s")
        params.append(since)
    if before_id is not None:
        clauses.append("id < %s")
        params.append(before_id)
    params.append(limit)
    rows = conn.execute(
        f"SELECT * FROM activity_log WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT %s",
        params,
    ).fetchall()
    return [ActivityEntry.from_row(r) for r in rows]


def last_actor_name(conn: Connection[Any], task_id: UUID, action: str) -> str | None:
    """Who last did ``action`` on the task, by display name (else by id)."""
    row = conn.execute(
        "SELECT COALESCE(actor_name, actor) AS who FROM activity_log WHERE"
        " task_id = %s AND action = %s ORDER BY id DESC LIMIT 1", (task_id, action)).fetchone()
    return None if row is None else str(row["who"])
