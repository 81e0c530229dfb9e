"""Projects and their environments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.domain.models import Environment, Project
from shared.errors import NotFound
from shared.store import _paging, activity
from shared.store._paging import Key

_PROJECT_FIELDS = ("name", "description")
_ENV_FIELDS = ("name", "target", "database", "url", "expires_at")


def create_project(conn: Connection[Any], *, slug: str, name: str, description: str = "",
                   actor: str) -> Project:
    row = conn.execute(
        "INSERT INTO projects (slug, name, description) VALUES (%s, %s, %s) RETURNING *",
        (slug, name, description),
    ).fetchone()
    assert row is not None
    project = Project.from_row(row)
    activity.record(conn, actor=actor, action="project.created", project_id=project.id,
                    details={"slug": slug})
    return project


def get_project(conn: Connection[Any], ref: str | UUID) -> Project:
    """By id or slug."""
    row = conn.execute(
        "SELECT * FROM projects WHERE slug = %s OR id::text = %s", (str(ref), str(ref))
    ).fetchone()
    if row is None:
        raise NotFound(f"project {ref} not found", field="project")
    return Project.from_row(row)


def project_key(project: Project) -> Key:
    return (project.slug,)


def slug_of(conn: Connection[Any], project_id: UUID) -> str | None:
    row = conn.execute("SELECT slug FROM projects WHERE id = %s", (project_id,)).fetchone()
    return row["slug"] if row else None


def list_projects(conn: Connection[Any], *, after: Key | None = None,
                  limit: int | None = None, only_ids: list[UUID] | None = None,
                  ) -> list[Project]:
    """Projects by slug, past the ``after`` key (see ``_paging``)."""
    return [Project.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM projects WHERE (%s::uuid[] IS NULL OR id = ANY(%s))",
        (only_ids, only_ids), order=("slug",), after_key=after, limit_to=limit)]


def update_project(conn: Connection[Any], project_id: UUID, changes: dict[str, Any], *,
                   actor: str) -> Project:
    sets = {k: v for k, v in changes.items() if k in _PROJECT_FIELDS}
    if sets:
        assignments = ", ".join(f"{k} = %s" for k in sets)
        conn.execute(f"UPDATE projects SET {assignments}, updated_at = now() WHERE id = %s",
                     (*sets.values(), project_id))
        activity.record(conn, actor=actor, action="project.updated", project_id=project_id,
                        details={"fields": sorted(sets)})
    return get_project(conn, project_id)


def delete_project(conn: Connection[Any], project_id: UUID, *, actor: str) -> None:
    project = get_project(conn, project_id)
    conn.execute("DELETE FROM projects WHERE id = %s", (project_id,))
    activity.record(conn, actor=actor, action="project.deleted", details={"slug": project.slug})


def create_environment(conn: Connection[Any], *, project_id: UUID, slug: str, name: str,
                       target: dict[str, Any] | None = None,
                       database: dict[str, Any] | None = None, kind: str = "shared",
                       parent_id: UUID | None = None, expires_at: datetime | None = None,
                       url: str | None = None, actor: str) -> Environment:
    row = conn.execute(
        "INSERT INTO environments (project_id, slug, name, kind, target, database, parent_id,"
        " expires_at, url, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING *",
        (project_id, slug, name, kind, Jsonb(target or {}), Jsonb(database or {}), parent_id,
         expires_at, url, actor),
    ).fetchone()
    assert row is not None
    env = Environment.from_row(row)
    activity.record(conn, actor=actor, action="environment.created", project_id=project_id,
                    environment_id=env.id, details={"slug": slug, "kind": kind})
    return env


def get_environment(conn: Connection[Any], project_id: UUID, ref: str | UUID) -> Environment:
    row = conn.execute(
        "SELECT * FROM environments WHERE project_id = %s AND (slug = %s OR id::text = %s)",
        (project_id, str(ref), str(ref)),
    ).fetchone()
    if row is None:
        raise NotFound(f"environment {ref} not found", field="environment")
    return Environment.from_row(row)


def find_environment(conn: Connection[Any], environment_id: UUID) -> Environment | None:
    row = conn.execute("SELECT * FROM environments WHERE id = %s", (environment_id,)).fetchone()
    return None if row is None else Environment.from_row(row)


def get_environment_by_id(conn: Connection[Any], environment_id: UUID) -> Environment:
    env = find_environment(conn, environment_id)
    if env is None:
        raise NotFound(f"environment {environment_id} not found", field="environment")
    return env


def lock_environment(conn: Connection[Any], environment_id: UUID) -> None:
    conn.execute("SELECT 1 FROM environments WHERE id = %s FOR UPDATE", (environment_id,))


def delete_environment_row(conn: Connection[Any], environment_id: UUID) -> None:
    """The row alone (its tasks and backups go with it); callers record the activity."""
    conn.execute("DELETE FROM environments WHERE id = %s", (environment_id,))


def environment_key(env: Environment) -> Key:
    return (env.kind == "sandbox", env.slug)


def list_environments(conn: Connection[Any], project_id: UUID, *, after: Key | None = None,
                      limit: int | None = None) -> list[Environment]:
    """Shared environments, then sandboxes, each by slug."""
    return [Environment.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM environments WHERE project_id = %s", (project_id,),
        order=("kind = 'sandbox'", "slug"), after_key=after, limit_to=limit)]


def list_expired_sandboxes(conn: Connection[Any], now: datetime) -> list[Environment]:
    rows = conn.execute(
        "SELECT * FROM environments WHERE kind = 'sandbox' AND expires_at <= %s"
        " ORDER BY expires_at", (now,)).fetchall()
    return [Environment.from_row(r) for r in rows]


def update_environment(conn: Connection[Any], env: Environment, changes: dict[str, Any], *,
                       actor: str) -> Environment:
    sets = {k: (Jsonb(v) if isinstance(v, dict) else v) for k, v in changes.items()
            if k in _ENV_FIELDS}
    if sets:
        assignments = ", ".join(f"{k} = %s" for k in sets)
        conn.execute(
            f"UPDATE environments SET {assignments}, updated_at = now() WHERE id = %s",
            (*sets.values(), env.id))
        activity.record(conn, actor=actor, action="environment.updated",
                        project_id=env.project_id, environment_id=env.id,
                        details={"fields": sorted(sets)})
    return get_environment_by_id(conn, env.id)


def delete_environment(conn: Connection[Any], env: Environment, *, actor: str) -> None:
    conn.execute("DELETE FROM environments WHERE id = %s", (env.id,))
    activity.record(conn, actor=actor, action="environment.deleted", project_id=env.project_id,
                    details={"slug": env.slug})


def projects_using_pool(conn: Connection[Any], pool: str) -> list[Project]:
    """Projects with an environment whose target names the agent pool."""
    rows = conn.execute(
        "SELECT DISTINCT p.* FROM projects p JOIN environments e ON e.project_id = p.id"
        " WHERE e.target->>'pool' = %s", (pool,)).fetchall()
    return [Project.from_row(r) for r in rows]


def sandboxes_expiring_between(conn: Connection[Any], start: datetime,
                               end: datetime) -> list[tuple[Environment, Project]]:
    """Sandboxes whose expiry falls in (start, end], each with its project."""
    rows = conn.execute(
        "SELECT e.*, p.id AS p_id FROM environments e JOIN projects p ON p.id = e.project_id"
        " WHERE e.kind = 'sandbox' AND e.expires_at > %s AND e.expires_at <= %s",
        (start, end)).fetchall()
    return [(Environment.from_row(r), get_project(conn, r["p_id"])) for r in rows]


def lock_expired_sandbox(conn: Connection[Any], sandbox_id: UUID, now: datetime) -> bool:
    """Lock the sandbox if it is still expired at ``now`` (False: extended or gone)."""
    return conn.execute("SELECT 1 FROM environments WHERE id = %s AND kind = 'sandbox'"
                        " AND expires_at <= %s FOR UPDATE", (sandbox_id, now)).fetchone(
                        ) is not None


def lifetime_left(conn: Connection[Any], environment_id: UUID, max_hours: int) -> timedelta:
    """How much longer an environment may live when its whole lifetime is ``max_hours``
    from its creation (negative: past it). ``created_at`` is stamped by Postgres, so its
    age is measured by Postgres: ``created_at + max_hours - now()``, one clock."""
    row = conn.execute(
        "SELECT created_at + make_interval(hours => %s) - now() AS left_for"
        " FROM environments WHERE id = %s", (max_hours, environment_id)).fetchone()
    if row is None:
        raise NotFound(f"environment {environment_id} not found", field="environment")
    left: timedelta = row["left_for"]
    return left


def set_expiry(conn: Connection[Any], environment_id: UUID, expires_at: datetime) -> None:
    conn.execute("UPDATE environments SET expires_at = %s, updated_at = now() WHERE id = %s",
                 (expires_at, environment_id))


def project_id_of_environment(conn: Connection[Any], environment_id: UUID) -> UUID:
    row = conn.execute("SELECT project_id FROM environments WHERE id = %s",
                       (environment_id,)).fetchone()
    if row is None:
        raise NotFound(f"environment {environment_id} not found", field="environment")
    project_id: UUID = row["project_id"]
    return project_id
