"""Approval rules of environments, approvers' decisions, and the approval snapshot each
task carries (the rules and their checks live in ``shared.tasks.approvals``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb


def protection_row(conn: Connection[Any], environment_id: UUID) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM environment_protections WHERE environment_id = %s",
                        (environment_id,)).fetchone()


def protection_row_for(conn: Connection[Any], environment_id: UUID
                       ) -> tuple[dict[str, Any], bool] | None:
    """The environment's own protection row, else (a sandbox) its parent's, and whether
    it is the parent's; one read."""
    row = conn.execute(
        "SELECT p.*, p.environment_id <> %(env)s AS inherited FROM environment_protections p"
        " WHERE p.environment_id = %(env)s OR p.environment_id = (SELECT parent_id"
        " FROM environments WHERE id = %(env)s AND kind = 'sandbox')"
        " ORDER BY p.environment_id = %(env)s DESC LIMIT 1", {"env": environment_id}
    ).fetchone()
    return None if row is None else (row, bool(row["inherited"]))


def upsert_protection(conn: Connection[Any], environment_id: UUID, *,
                      operations: list[str], approvers: list[dict[str, Any]],
                      required_approvals: int, allow_self_approval: bool,
                      timeout_minutes: float, actor: str) -> None:
    conn.execute(
        "INSERT INTO environment_protections (environment_id, operations, approvers,"
        " required_approvals, allow_self_approval, timeout_minutes, updated_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (environment_id) DO UPDATE SET"
        " operations = EXCLUDED.operations, approvers = EXCLUDED.approvers,"
        " required_approvals = EXCLUDED.required_approvals,"
        " allow_self_approval = EXCLUDED.allow_self_approval,"
        " timeout_minutes = EXCLUDED.timeout_minutes, updated_by = EXCLUDED.updated_by,"
        " updated_at = now()",
        (environment_id, operations, Jsonb(approvers), required_approvals,
         allow_self_approval, timeout_minutes, actor))


def delete_protection(conn: Connection[Any], environment_id: UUID) -> None:
    conn.execute("DELETE FROM environment_protections WHERE environment_id = %s",
                 (environment_id,))


def task_approval(conn: Connection[Any], task_id: UUID) -> dict[str, Any] | None:
    """The task's approval snapshot (``{}`` when it has none); None: no such task."""
    row = conn.execute("SELECT approval FROM tasks WHERE id = %s", (task_id,)).fetchone()
    return None if row is None else (row["approval"] or {})


def set_task_approval(conn: Connection[Any], task_id: UUID, snapshot: dict[str, Any], *,
                      leave_queue: bool = False) -> None:
    """Write the snapshot; ``leave_queue``: the task also gives up its queue place until
    it is approved (``join_queue``)."""
    if leave_queue:
        conn.execute("UPDATE tasks SET queue_seq = NULL, approval = %s WHERE id = %s",
                     (Jsonb(snapshot), task_id))
    else:
        conn.execute("UPDATE tasks SET approval = %s WHERE id = %s", (Jsonb(snapshot), task_id))


def join_queue(conn: Connection[Any], task_id: UUID) -> None:
    """An approved task takes its place at the back of the environment queue."""
    conn.execute("UPDATE tasks SET queue_seq = nextval('task_queue_seq') WHERE id = %s"
                 " AND queue_seq IS NULL", (task_id,))


def has_decided(conn: Connection[Any], task_id: UUID, approver: str) -> bool:
    return conn.execute("SELECT 1 FROM approvals WHERE task_id = %s AND approver = %s",
                        (task_id, approver)).fetchone() is not None


def record_decision(conn: Connection[Any], task_id: UUID, *, approver: str,
                    approver_name: str, decision: str, comment: str) -> bool:
    """False when this approver already decided on the task."""
    row = conn.execute(
        "INSERT INTO approvals (task_id, approver, approver_name, decision, comment)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT ON CONSTRAINT approvals_one_per_approver"
        " DO NOTHING RETURNING id",
        (task_id, approver, approver_name, decision, comment)).fetchone()
    return row is not None


def decisions_of(conn: Connection[Any], task_id: UUID) -> list[dict[str, Any]]:
    return conn.execute("SELECT approver, approver_name, decision, comment FROM approvals"
                        " WHERE task_id = %s ORDER BY created_at", (task_id,)).fetchall()


def pending_candidates(conn: Connection[Any], project_ids: list[UUID] | None, *,
                        after_seq: int, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT t.*, p.approvers, p.allow_self_approval FROM tasks t"
        " JOIN environments e ON e.id = t.environment_id"
        # a sandbox without its own rule is held by its parent's
        " JOIN environment_protections p ON p.environment_id = CASE WHEN EXISTS (SELECT 1"
        "  FROM environment_protections o WHERE o.environment_id = e.id) OR e.parent_id IS"
        "  NULL THEN e.id ELSE e.parent_id END"
        " WHERE t.approval->>'state' = 'pending' AND t.status = 'waiting'"
        " AND (%s::uuid[] IS NULL OR t.project_id = ANY(%s)) AND t.seq > %s"
        " ORDER BY t.seq LIMIT %s",
        (project_ids, project_ids, after_seq, limit)).fetchall()
