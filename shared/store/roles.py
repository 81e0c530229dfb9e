"""Role assignments: reader / operator / admin per project, or global (project NULL)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.domain.models import RoleAssignment
from shared.errors import NotFound
from shared.store import _paging, activity
from shared.store._paging import Key


def assign_role(conn: Connection[Any], *, project_id: UUID | None, principal_type: str,
                principal_id: str, role: str, actor: str) -> RoleAssignment:
    """Grant (or change) a principal's role on a project; one role per principal."""
    row = conn.execute(
        "INSERT INTO role_assignments (project_id, principal_type, principal_id, role,"
        " created_by) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (COALESCE(project_id, '00000000-0000-0000-0000-000000000000'::uuid),"
        " principal_type, principal_id) DO UPDATE SET role = EXCLUDED.role RETURNING *",
        (project_id, principal_type, principal_id, role, actor)).fetchone()
    assert row is not None
    activity.record(conn, actor=actor, action="role.assigned", project_id=project_id,
                    details={"principalType": principal_type, "principalId": principal_id,
                             "role": role})
    return RoleAssignment.from_row(row)


def revoke_role(conn: Connection[Any], assignment_id: UUID, *, project_id: UUID | None,
                actor: str) -> None:
    """Delete an assignment of ``project_id``'s scope (None: a global one) — never one of
    another scope, which answers as not found."""
    row = conn.execute("DELETE FROM role_assignments WHERE id = %s"
                       " AND project_id IS NOT DISTINCT FROM %s RETURNING *",
                       (assignment_id, project_id)).fetchone()
    if row is None:
        where = "in this project" if project_id else "among the global assignments"
        raise NotFound(f"role assignment {assignment_id} not found {where}",
                       field="assignment")
    activity.record(conn, actor=actor, action="role.revoked", project_id=row["project_id"],
                    details={"principalType": row["principal_type"],
                             "principalId": row["principal_id"], "role": row["role"]})


def roles_for(conn: Connection[Any], *, user_id: str, groups: list[str],
              service: str | None = None) -> list[RoleAssignment]:
    """Every assignment that applies to a principal: its user id, groups and service name."""
    rows = conn.execute(
        "SELECT * FROM role_assignments WHERE (principal_type = 'user' AND principal_id = %s)"
        " OR (principal_type = 'group' AND principal_id = ANY(%s))"
        " OR (principal_type = 'service' AND principal_id = %s)",
        (user_id, groups, service)).fetchall()
    return [RoleAssignment.from_row(r) for r in rows]


def assignment_key(assignment: RoleAssignment) -> Key:
    return (assignment.principal_type, assignment.principal_id, assignment.id)


def list_assignments(conn: Connection[Any], project_id: UUID | None, *,
                     after: Key | None = None,
                     limit: int | None = None) -> list[RoleAssignment]:
    return [RoleAssignment.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM role_assignments WHERE project_id IS NOT DISTINCT FROM %s",
        (project_id,), order=("principal_type", "principal_id", "id"), after_key=after,
        limit_to=limit)]
