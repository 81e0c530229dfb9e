"""Grantable resources (agent pools, connections, clusters, sites) and their grants."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.errors import ConstraintViolation, NotFound
from shared.store import _paging, activity
from shared.store._paging import Key

_ALL = "00000000-0000-0000-0000-000000000000"


def register(conn: Connection[Any], *, kind: str, name: str, actor: str,
             description: str = "", metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register a resource (idempotent by kind and name: the existing row is returned)."""
    row: dict[str, Any] | None = conn.execute(
        "INSERT INTO resources (kind, name, description, metadata, created_by)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind, name) DO NOTHING RETURNING *",
        (kind, name, description, Jsonb(metadata or {}), actor)).fetchone()
    if row is None:
        return get_resource(conn, f"{kind}:{name}")
    activity.record(conn, actor=actor, action="resource.registered",
                    details={"kind": kind, "name": name, "resourceId": str(row["id"])})
    return row


def get_resource(conn: Connection[Any], ref: str) -> dict[str, Any]:
    """By id, or ``kind:name``."""
    kind, _, name = ref.partition(":")
    row = conn.execute(
        "SELECT * FROM resources WHERE id::text = %s OR (kind = %s AND name = %s)",
        (ref, kind, name)).fetchone()
    if row is None:
        raise NotFound(f"resource {ref} not found", field="resource")
    found: dict[str, Any] = row
    return found


def resource_key(resource: dict[str, Any]) -> Key:
    return (resource["kind"], resource["name"])


def list_resources(conn: Connection[Any], kind: str | None = None, *,
                   after: Key | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    return _paging.rows(conn, "SELECT * FROM resources WHERE (%s::text IS NULL OR kind = %s)",
                        (kind, kind), order=("kind", "name"), after_key=after,
                        limit_to=limit)


def delete_resource(conn: Connection[Any], resource: dict[str, Any], *, actor: str) -> None:
    conn.execute("DELETE FROM resources WHERE id = %s", (resource["id"],))
    activity.record(conn, actor=actor, action="resource.deleted",
                    details={"kind": resource["kind"], "name": resource["name"]})


def grant_key(grant: dict[str, Any]) -> Key:
    return (grant["project_slug"] or "", grant["id"])


def grants_of(conn: Connection[Any], resource_id: UUID, *, after: Key | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """The grant to every project (``*``) first, then by project slug."""
    return _paging.rows(
        conn, "SELECT g.*, p.slug AS project_slug FROM resource_grants g"
        " LEFT JOIN projects p ON p.id = g.project_id WHERE g.resource_id = %s",
        (resource_id,), order=("COALESCE(p.slug, '')", "g.id"), after_key=after,
        limit_to=limit)


def grant(conn: Connection[Any], resource: dict[str, Any], *, project_id: UUID | None,
          namespaces: list[str] | None, actor: str, via: str | None = None) -> dict[str, Any]:
    """Grant the resource to a project (None: every project). Granting again widens a
    cluster grant's namespaces."""
    if resource["kind"] != "cluster":
        namespaces = None
    elif not namespaces:
        raise ConstraintViolation("a cluster grant lists the namespaces the project may use",
                                  field="namespaces")
    row: dict[str, Any] | None = conn.execute(
        "INSERT INTO resource_grants (resource_id, project_id, namespaces, created_by)"
        " VALUES (%s, %s, %s, %s)"
        # The conflict target must repeat the unique index's expression literally: as a
        # bound parameter it stops matching once psycopg prepares the statement (after
        # five runs on a connection), and the insert fails with "no unique constraint".
        f" ON CONFLICT (resource_id, COALESCE(project_id, '{_ALL}'::uuid))"
        " DO UPDATE SET namespaces ="
        "  (SELECT array_agg(DISTINCT n ORDER BY n) FROM unnest("
        "   resource_grants.namespaces || EXCLUDED.namespaces) n)"
        " RETURNING *",
        (resource["id"], project_id, sorted(set(namespaces)) if namespaces else None,
         actor)).fetchone()
    assert row is not None
    details: dict[str, Any] = {"kind": resource["kind"], "name": resource["name"],
                               "grantId": str(row["id"]), "namespaces": row["namespaces"],
                               "allProjects": project_id is None}
    if via:
        details["via"] = via
    activity.record(conn, actor=actor, action="resource.granted", project_id=project_id,
                    details=details)
    return row


def release_sandbox_namespace(conn: Connection[Any], sandbox: Any, *, actor: str) -> None:
    """Teardown: the sandbox's own namespace leaves its project's cluster grant."""
    target = sandbox.target
    if target.get("type") != "agent" or not target.get("cluster"):
        return
    row = conn.execute(
        "UPDATE resource_grants g SET namespaces = array_remove(g.namespaces, %s)"
        " FROM resources r WHERE r.id = g.resource_id AND r.kind = 'cluster' AND r.name = %s"
        " AND g.project_id = %s AND %s = ANY(g.namespaces) RETURNING g.id",
        (target.get("namespace"), target["cluster"], sandbox.project_id,
         target.get("namespace"))).fetchone()
    if row is not None:
        activity.record(conn, actor=actor, action="resource.grant_narrowed",
                        project_id=sandbox.project_id,
                        details={"kind": "cluster", "name": target["cluster"],
                                 "namespace": target.get("namespace"),
                                 "via": f"sandbox {sandbox.slug} torn down"})


def delete_grant(conn: Connection[Any], resource_id: UUID, grant_id: str) -> dict[str, Any]:
    try:
        row = conn.execute("DELETE FROM resource_grants WHERE id = %s AND resource_id = %s"
                           " RETURNING *", (UUID(grant_id), resource_id)).fetchone()
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"grant {grant_id} not found on this resource", field="grant")
    withdrawn: dict[str, Any] = row
    return withdrawn


def is_registered(conn: Connection[Any], kind: str, name: str) -> bool:
    return conn.execute("SELECT 1 FROM resources WHERE kind = %s AND name = %s",
                        (kind, name)).fetchone() is not None


def granted_namespaces(conn: Connection[Any], project_id: UUID, kind: str,
                       name: str) -> list[list[str] | None]:
    """The namespaces of each grant of the resource to the project or to every project
    (empty: not granted; ``None`` in it: a grant without namespaces)."""
    rows = conn.execute(
        "SELECT g.namespaces FROM resources r JOIN resource_grants g"
        " ON g.resource_id = r.id AND (g.project_id = %s OR g.project_id IS NULL)"
        " WHERE r.kind = %s AND r.name = %s", (project_id, kind, name)).fetchall()
    return [r["namespaces"] for r in rows]


def lock_pending_jobs_with_environments(conn: Connection[Any]) -> list[dict[str, Any]]:
    """Every pending job (locked) with its environment's project, target and database."""
    return conn.execute(
        "SELECT j.id, e.project_id, e.target, e.database, p.slug FROM jobs j"
        " JOIN tasks t ON t.id = j.task_id"
        " JOIN environments e ON e.id = COALESCE((j.payload->>'environmentId')::uuid,"
        "  t.environment_id)"
        " JOIN projects p ON p.id = e.project_id"
        " WHERE j.status = 'pending' FOR UPDATE OF j").fetchall()
