"""Change-freeze and business-hours windows of environments, and their overrides (the
windows' meaning lives in ``shared.tasks.freezes``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb


def freeze_row(conn: Connection[Any], environment_id: UUID) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM environment_freezes WHERE environment_id = %s",
                        (environment_id,)).fetchone()


def upsert_windows(conn: Connection[Any], environment_id: UUID,
                   windows: list[dict[str, Any]], *, actor: str) -> None:
    conn.execute(
        "INSERT INTO environment_freezes (environment_id, windows, updated_by)"
        " VALUES (%s, %s, %s) ON CONFLICT (environment_id) DO UPDATE SET"
        " windows = EXCLUDED.windows, updated_by = EXCLUDED.updated_by, updated_at = now()",
        (environment_id, Jsonb(windows), actor))


def upsert_override(conn: Connection[Any], environment_id: UUID, *, until: datetime,
                    reason: str, actor: str) -> None:
    conn.execute(
        "INSERT INTO environment_freezes (environment_id, override_until, override_by,"
        " override_reason, updated_by) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (environment_id) DO UPDATE SET override_until = EXCLUDED.override_until,"
        " override_by = EXCLUDED.override_by, override_reason = EXCLUDED.override_reason",
        (environment_id, until, actor, reason, actor))
