"""Backup artifacts and backup schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.domain.models import Backup, BackupSchedule
from shared.errors import NotFound
from shared.store import _paging
from shared.store._paging import Key

BACKUP_KINDS = ("backup", "safety")


def record_backup(conn: Connection[Any], *, environment_id: UUID, task_id: UUID | None,
                  location: str, size_bytes: int, sha256: str, kind: str = "backup",
                  duration_ms: int | None = None,
                  tool_versions: dict[str, Any] | None = None) -> Backup:
    """Record the artifact a task's job uploaded — once: the activity run again after a
    crash finds the row its first run wrote (the task row is locked meanwhile, so two
    runs at once cannot both insert)."""
    if task_id is not None:
        conn.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        found = conn.execute("SELECT * FROM backups WHERE task_id = %s AND location = %s",
                             (task_id, location)).fetchone()
        if found is not None:
            return Backup.from_row(found)
    row = conn.execute(
        "INSERT INTO backups (environment_id, task_id, location, size_bytes, sha256, kind,"
        " duration_ms, tool_versions) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (environment_id, task_id, location, size_bytes, sha256, kind, duration_ms,
         Jsonb(tool_versions) if tool_versions else None)).fetchone()
    assert row is not None
    return Backup.from_row(row)


def get_backup(conn: Connection[Any], backup_id: UUID | str) -> Backup:
    try:
        row = conn.execute("SELECT * FROM backups WHERE id = %s",
                           (UUID(str(backup_id)),)).fetchone()
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"backup {backup_id} not found", field="backupId")
    return Backup.from_row(row)


def backups_younger_than(conn: Connection[Any], environment_id: UUID, days: int) -> set[UUID]:
    """The environment's backups taken within the last ``days`` days. ``created_at`` is
    stamped by Postgres, so their age is measured by Postgres, against ``now()``."""
    rows = conn.execute(
        "SELECT id FROM backups WHERE environment_id = %s"
        " AND created_at >= now() - make_interval(days => %s)",
        (environment_id, days)).fetchall()
    return {r["id"] for r in rows}


def backup_key(backup: Backup) -> Key:
    return (backup.created_at, backup.id)


def list_backups(conn: Connection[Any], environment_id: UUID, *, after: Key | None = None,
                 limit: int | None = None,
                 kinds: tuple[str, ...] = BACKUP_KINDS) -> list[Backup]:
    """Newest first, past the ``after`` key (see ``_paging``)."""
    return [Backup.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM backups WHERE environment_id = %s AND kind = ANY(%s)",
        (environment_id, list(kinds)), order=("created_at", "id"), after_key=after,
        limit_to=limit, descending=True)]


def takers(conn: Connection[Any], backups: list[Backup]) -> dict[UUID, dict[str, Any]]:
    """Who took each backup: the requester of the task that made it (a scheduled one:
    ``scheduler``), by backup id; backups without a task are absent."""
    task_ids = [b.task_id for b in backups if b.task_id is not None]
    if not task_ids:
        return {}
    rows = conn.execute("SELECT id, requested_by, requested_by_name FROM tasks"
                        " WHERE id = ANY(%s)", (task_ids,)).fetchall()
    by_task = {r["id"]: r for r in rows}
    return {b.id: by_task[b.task_id] for b in backups if b.task_id in by_task}


def latest_backup(conn: Connection[Any], environment_id: UUID) -> Backup | None:
    """The newest backup somebody asked for; never a restore's safety copy."""
    found = list_backups(conn, environment_id, limit=1, kinds=("backup",))
    return found[0] if found else None


def delete_backup(conn: Connection[Any], backup_id: UUID) -> None:
    conn.execute("DELETE FROM backups WHERE id = %s", (backup_id,))


def create_schedule(conn: Connection[Any], *, environment_id: UUID, cron: str,
                    timezone: str, retain_count: int | None, retain_days: int | None,
                    actor: str, created_at: datetime) -> BackupSchedule:
    """``created_at`` comes from the injected clock: it anchors the first slot, which
    ``due_slot`` compares with slots computed from ``clock.now()`` (see ``shared.clock``)."""
    row = conn.execute(
        "INSERT INTO backup_schedules (environment_id, cron, timezone, retain_count,"
        " retain_days, created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " RETURNING *",
        (environment_id, cron, timezone, retain_count, retain_days, actor,
         created_at)).fetchone()
    assert row is not None
    return BackupSchedule.from_row(row)


def update_schedule(conn: Connection[Any], schedule_id: UUID, *, cron: str, timezone: str,
                    retain_count: int | None, retain_days: int | None, enabled: bool,
                    last_slot_at: datetime | None) -> BackupSchedule:
    """Replace a schedule's settings; ``last_slot_at`` is the slot it counts as fired."""
    row = conn.execute(
        "UPDATE backup_schedules SET cron = %s, timezone = %s, retain_count = %s,"
        " retain_days = %s, enabled = %s, last_slot_at = %s WHERE id = %s RETURNING *",
        (cron, timezone, retain_count, retain_days, enabled, last_slot_at,
         schedule_id)).fetchone()
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found", field="schedule")
    return BackupSchedule.from_row(row)


def get_schedule(conn: Connection[Any], schedule_id: UUID) -> BackupSchedule:
    row = conn.execute("SELECT * FROM backup_schedules WHERE id = %s",
                       (schedule_id,)).fetchone()
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found", field="schedule")
    return BackupSchedule.from_row(row)


def schedule_key(schedule: BackupSchedule) -> Key:
    return (schedule.created_at, schedule.id)


def list_schedules(conn: Connection[Any], *, enabled_only: bool = False,
                   environment_id: UUID | None = None, after: Key | None = None,
                   limit: int | None = None) -> list[BackupSchedule]:
    return [BackupSchedule.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM backup_schedules WHERE (NOT %s OR enabled)"
        " AND (%s::uuid IS NULL OR environment_id = %s)",
        (enabled_only, environment_id, environment_id), order=("created_at", "id"),
        after_key=after, limit_to=limit)]


def claim_slot(conn: Connection[Any], schedule_id: UUID, slot_at: datetime) -> bool:
    """Claim one schedule slot; False if another host already did."""
    row = conn.execute(
        "INSERT INTO backup_schedule_slots (schedule_id, slot_at) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING RETURNING schedule_id", (schedule_id, slot_at)).fetchone()
    if row is not None:
        conn.execute("UPDATE backup_schedules SET last_slot_at = %s WHERE id = %s",
                     (slot_at, schedule_id))
    return row is not None


def attach_slot_task(conn: Connection[Any], schedule_id: UUID, slot_at: datetime,
                     task_id: UUID) -> None:
    conn.execute("UPDATE backup_schedule_slots SET task_id = %s WHERE schedule_id = %s"
                 " AND slot_at = %s", (task_id, schedule_id, slot_at))


def delete_schedule(conn: Connection[Any], schedule_id: UUID) -> None:
    conn.execute("DELETE FROM backup_schedules WHERE id = %s", (schedule_id,))
