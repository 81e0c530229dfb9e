"""Granted execution resources: what an environment may name, and who granted it.

Modelled on Azure DevOps' agent pools and service connections authorized per project:
global admins register agent pools, database connections, Kubernetes clusters and App
Service sites (names and non-secret metadata only; secrets stay in the agent's config or
Key Vault) and grant each to specific projects, or to every project. An environment may
name only resources granted to its project (a cluster grant also lists the namespaces
the project may use); dispatch checks again, so a grant withdrawn while a task waits
fails it. As in Azure DevOps, someone who administers the resources (a global admin)
authorizes what they name when they save an environment: the grant is created and
audited; anyone else gets a 422 naming the field and the resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import Field, StringConstraints, model_validator

from shared.auth import Access
from shared.domain.models import Job
from shared.errors import ConstraintViolation, NotFound
from shared.store import activity
from shared.store import jobs as job_store
from shared.tasks.requests import Body, K8sName, Name

KINDS = ("pool", "connection", "cluster", "site")
WORDS = {"pool": "agent pool", "connection": "database connection",
         "cluster": "Kubernetes cluster", "site": "App Service site"}
_ALL = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Need:
    """One resource an environment names, and where (the field an error names)."""

    kind: str
    name: str
    field: str
    namespaces: tuple[str, ...] = ()

    def words(self) -> str:
        return f"{WORDS[self.kind]} '{self.name}'"


def site_name(target: dict[str, Any]) -> str:
    return "/".join(str(target.get(k, "")) for k in
                    ("subscriptionId", "resourceGroup", "site")).lower()


def target_namespaces(target: dict[str, Any]) -> tuple[str, ...]:
    """The namespaces an agent target's restarts may use: its own (``default`` when
    unset) and the extra ones its admin listed."""
    own = str(target.get("namespace") or "default")
    extra = [str(n) for n in target.get("namespaces") or [] if n != own]
    return (own, *extra)


def needs_of(target: dict[str, Any], database: dict[str, Any]) -> list[Need]:
    kind = target.get("type")
    needs: list[Need] = []
    if kind in ("agent", "appservice") and target.get("pool"):
        needs.append(Need("pool", str(target["pool"]), "target.pool"))
    if kind == "agent" and target.get("cluster"):
        needs.append(Need("cluster", str(target["cluster"]), "target.cluster",
                          target_namespaces(target)))
    if kind == "appservice":
        needs.append(Need("site", site_name(target), "target.site"))
    if database.get("connection"):
        needs.append(Need("connection", str(database["connection"]), "database.connection"))
    return needs


# -- registry ---------------------------------------------------------------------------
def resource_json(row: dict[str, Any], grants: list[dict[str, Any]] | None = None
                  ) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(row["id"]), "kind": row["kind"], "name": row["name"],
                           "description": row["description"], "metadata": row["metadata"],
                           "createdBy": row["created_by"],
                           "createdAt": row["created_at"].isoformat()}
    if grants is not None:
        out["grants"] = [grant_json(g) for g in grants]
    return out


def grant_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "resourceId": str(row["resource_id"]),
            "projectId": str(row["project_id"]) if row["project_id"] else None,
            "project": row.get("project_slug") or "*",
            "namespaces": row["namespaces"], "createdBy": row["created_by"],
            "createdAt": row["created_at"].isoformat()}


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
    row: dict[str, Any] | None = conn.execute(
        "SELECT * FROM resources WHERE id::text = %s OR (kind = %s AND name = %s)",
        (ref, kind, name)).fetchone()
    if row is None:
        raise NotFound(f"resource {ref} not found", field="resource")
    return row


def list_resources(conn: Connection[Any], kind: str | None = None) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM resources WHERE %s::text IS NULL OR kind = %s"
                        " ORDER BY kind, name", (kind, kind)).fetchall()


def delete_resource(conn: Connection[Any], resource: dict[str, Any], *, actor: str) -> None:
    conn.execute("DELETE FROM resources WHERE id = %s", (resource["id"],))
    activity.record(conn, actor=actor, action="resource.deleted",
                    details={"kind": resource["kind"], "name": resource["name"]})


def grants_of(conn: Connection[Any], resource_id: UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT g.*, p.slug AS project_slug FROM resource_grants g"
        " LEFT JOIN projects p ON p.id = g.project_id WHERE g.resource_id = %s"
        " ORDER BY p.slug NULLS FIRST", (resource_id,)).fetchall()


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


def withdraw(conn: Connection[Any], resource: dict[str, Any], grant_id: str, *, actor: str,
             now: datetime) -> list[Job]:
    """Withdraw a grant; jobs still waiting for an agent that now need an ungranted
    resource fail with that reason (returned, for their orchestrations' wake-up)."""
    try:
        row = conn.execute("DELETE FROM resource_grants WHERE id = %s AND resource_id = %s"
                           " RETURNING *", (UUID(grant_id), resource["id"])).fetchone()
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"grant {grant_id} not found on this resource", field="grant")
    activity.record(conn, actor=actor, action="resource.grant_withdrawn",
                    project_id=row["project_id"],
                    details={"kind": resource["kind"], "name": resource["name"],
                             "grantId": grant_id})
    return fail_ungranted_jobs(conn, now)


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


def fail_ungranted_jobs(conn: Connection[Any], now: datetime) -> list[Job]:
    """Fail every pending job whose environment names a resource its project no longer
    holds a grant for (the agent must never pick it up)."""
    rows = conn.execute(
        "SELECT j.id, e.project_id, e.target, e.database, p.slug FROM jobs j"
        " JOIN tasks t ON t.id = j.task_id"
        " JOIN environments e ON e.id = COALESCE((j.payload->>'environmentId')::uuid,"
        "  t.environment_id)"
        " JOIN projects p ON p.id = e.project_id"
        " WHERE j.status = 'pending' FOR UPDATE OF j").fetchall()
    failed = []
    for row in rows:
        gaps = missing(conn, row["project_id"], needs_of(row["target"], row["database"]))
        if gaps:
            need, why = gaps[0]
            failed.append(job_store.finish_job(
                conn, row["id"], agent_id=None, status="failed", now=now,
                error=f"{need.field}: {why} (withdrawn while the task waited)"))
    return failed


# -- checks -----------------------------------------------------------------------------
def missing(conn: Connection[Any], project_id: UUID, needs: list[Need]
            ) -> list[tuple[Need, str]]:
    """The needs not covered by a grant to the project (or to every project), each with
    the reason in words."""
    gaps: list[tuple[Need, str]] = []
    project = conn.execute("SELECT slug FROM projects WHERE id = %s", (project_id,)).fetchone()
    slug = project["slug"] if project else str(project_id)
    for need in needs:
        rows = conn.execute(
            "SELECT g.namespaces FROM resources r JOIN resource_grants g"
            " ON g.resource_id = r.id AND (g.project_id = %s OR g.project_id IS NULL)"
            " WHERE r.kind = %s AND r.name = %s", (project_id, need.kind, need.name)
        ).fetchall()
        if not rows:
            registered = conn.execute("SELECT 1 FROM resources WHERE kind = %s AND name = %s",
                                      (need.kind, need.name)).fetchone()
            why = "is not granted to" if registered else "is not registered for"
            gaps.append((need, f"{need.words()} {why} project {slug}"))
            continue
        allowed = {n for r in rows for n in (r["namespaces"] or [])}
        outside = [n for n in need.namespaces if n not in allowed]
        if need.kind == "cluster" and outside:
            gaps.append((need, f"namespace '{outside[0]}' of {need.words()} is not granted "
                               f"to project {slug}"))
    return gaps


def check(conn: Connection[Any], project_id: UUID, needs: list[Need]) -> None:
    """Raise 422 naming the first field whose resource is not granted."""
    gaps = missing(conn, project_id, needs)
    if gaps:
        need, why = gaps[0]
        raise ConstraintViolation(f"{need.field}: {why}", field=need.field)


def authorize_environment(conn: Connection[Any], access: Access, project_id: UUID, *,
                          target: dict[str, Any], database: dict[str, Any], actor: str,
                          environment: str) -> None:
    """Check what an environment being saved names. A global admin (who administers the
    resources) authorizes them for the project by saving, as Azure DevOps does; the
    grants are audited. Anyone else gets a 422 for the first ungranted resource."""
    needs = needs_of(target, database)
    gaps = missing(conn, project_id, needs)
    if not gaps:
        return
    if access.global_role != "admin":
        need, why = gaps[0]
        raise ConstraintViolation(f"{need.field}: {why}; a global admin grants resources"
                                  " (POST /api/resources/{resource}/grants)", field=need.field)
    for need, _ in gaps:
        resource = register(conn, kind=need.kind, name=need.name, actor=actor)
        grant(conn, resource, project_id=project_id, namespaces=list(need.namespaces),
              actor=actor, via=f"saving environment {environment}")


# -- request bodies ---------------------------------------------------------------------
class ResourceCreate(Body):
    """A database connection or Kubernetes cluster by name (as the agent's config names
    it), or an App Service site; agent pools are registered with ``POST /api/pools``."""

    kind: Literal["connection", "cluster", "site"]
    name: Name | None = Field(default=None, description="connection or cluster name")
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    subscription_id: UUID | None = None
    resource_group: Annotated[str, StringConstraints(
        pattern=r"^[-A-Za-z0-9_.()]{1,90}$")] | None = None
    site: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{2,60}$")] | None = None

    @model_validator(mode="after")
    def _named(self) -> ResourceCreate:
        if self.kind == "site":
            if not (self.subscription_id and self.resource_group and self.site):
                raise ValueError("a site needs subscriptionId, resourceGroup and site")
        elif not self.name:
            raise ValueError(f"a {self.kind} needs a name")
        return self

    def key(self) -> tuple[str, dict[str, Any]]:
        """The registered name and non-secret metadata."""
        if self.kind == "site":
            meta = {"subscriptionId": str(self.subscription_id),
                    "resourceGroup": self.resource_group, "site": self.site}
            return site_name(meta), meta
        return str(self.name), {}


class GrantCreate(Body):
    project: Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9]([a-z0-9-]{0,61}"
                                                      r"[a-z0-9])?)$")] = Field(
        description="project slug, or * for every project")
    namespaces: list[K8sName] | None = Field(
        default=None, max_length=50, description="clusters: namespaces the project may use")
