"""The OpenAPI 3.1 document, generated from the same models the handlers validate with.

Response shapes are pydantic models too (``*Out``), and the tests check the views in
``shared.tasks.views`` against them, so the document cannot drift from the responses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from shared.grants.resources import GrantCreate, ResourceCreate
from shared.notify.rules import RuleInput
from shared.schedules.inputs import ExtendInput, ScheduleInput
from shared.tasks.approvals import Decision, Protection
from shared.tasks.requests import (
    OPERATION_BODIES,
    EnvironmentCreate,
    EnvironmentUpdate,
    ProjectCreate,
    ProjectUpdate,
)
from shared.tasks.scripts import ScriptDefinition

Status = Literal["queued", "waiting", "running", "succeeded", "failed", "cancelled",
                 "timed_out"]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskOut(Out):
    id: str
    seq: int
    operation: str
    status: Status
    progress: int
    reason: str | None
    projectId: str
    environmentId: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    requestedBy: str  # the stable id (userId/oid, service:<name>, or a system actor)
    requestedByName: str | None = None  # for display only
    createdAt: str
    updatedAt: str
    startedAt: str | None
    finishedAt: str | None
    approval: dict[str, Any] | None = None
    plan: dict[str, Any] | None = Field(
        default=None, description="what the task runs, resolved when it was requested: "
        "resources (pool, labels, connection, cluster, namespaces, site, slot) and script "
        "argv; approvals approve it and dispatch runs exactly it")


class ProjectOut(Out):
    id: str
    slug: str
    name: str
    description: str
    createdAt: str
    updatedAt: str
    yourRole: Literal["reader", "operator", "admin"] | None = None


class EnvironmentOut(Out):
    id: str
    projectId: str
    slug: str
    name: str
    kind: Literal["shared", "sandbox"]
    target: dict[str, Any]
    database: dict[str, Any]
    parentId: str | None
    expiresAt: str | None
    url: str | None
    createdBy: str
    createdAt: str
    updatedAt: str


class BackupOut(Out):
    id: str
    kind: Literal["backup", "safety"] = Field(
        description="'safety': the copy a restore took of the state it replaced; never "
                    "'latest' and never used to seed a sandbox")
    environmentId: str
    taskId: str | None
    sizeBytes: int
    sha256: str
    createdAt: str


class ActivityOut(Out):
    id: int
    at: str
    actor: str  # the stable id
    actorName: str | None = None  # for display only
    action: str
    projectId: str | None
    environmentId: str | None
    taskId: str | None
    details: dict[str, Any]


class LogLineOut(Out):
    seq: int
    at: str
    level: str
    text: str


class LogsOut(Out):
    taskId: str
    items: list[LogLineOut]
    last: int
    status: Status


class MeOut(Out):
    id: str
    name: str
    kind: Literal["user", "service"]
    actor: str
    globalRole: Literal["reader", "operator", "admin"] | None
    projectRoles: dict[str, str]
    appRoles: list[str]
    groups: list[str]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


def _page(model: type[BaseModel]) -> type[BaseModel]:
    return type(f"{model.__name__.removesuffix('Out')}Page", (Out,), {
        "__annotations__": {"items": list[model], "nextCursor": str | None}})  # type: ignore[valid-type]


TaskPage, ProjectPage, EnvironmentPage, BackupPage, ActivityPage = (
    _page(m) for m in (TaskOut, ProjectOut, EnvironmentOut, BackupOut, ActivityOut))

ENV = "/api/projects/{project}/environments/{env}"
OPERATION_PATHS = {
    "deploy": f"{ENV}/deployments", "backup": f"{ENV}/backups", "restore": f"{ENV}/restores",
    "refresh": f"{ENV}/refreshes", "restart": f"{ENV}/restarts",
    "sandbox_create": f"{ENV}/sandboxes",
    "script_run": f"{ENV}/scripts/{{script}}/runs", "sandbox_delete": f"{ENV}/teardown",
}

# (method, path, summary, request model, success status, response model, role needed)
Route = tuple[str, str, str, type[BaseModel] | None, int, type[BaseModel] | None, str]
ROUTES: list[Route] = [
    ("get", "/api/projects", "List the projects you can read", None, 200, ProjectPage,
     "reader"),
    ("post", "/api/projects", "Create a project (you become its admin)", ProjectCreate, 201,
     ProjectOut, "operator (global)"),
    ("get", "/api/projects/{project}", "Read a project", None, 200, ProjectOut, "reader"),
    ("patch", "/api/projects/{project}", "Change a project", ProjectUpdate, 200, ProjectOut,
     "admin"),
    ("delete", "/api/projects/{project}", "Delete a project", None, 204, None, "admin"),
    ("get", "/api/projects/{project}/environments", "List environments", None, 200,
     EnvironmentPage, "reader"),
    ("post", "/api/projects/{project}/environments", "Create an environment",
     EnvironmentCreate, 201, EnvironmentOut, "admin"),
    ("get", ENV, "Read an environment", None, 200, EnvironmentOut, "reader"),
    ("patch", ENV, "Change an environment", EnvironmentUpdate, 200, EnvironmentOut, "admin"),
    ("delete", ENV, "Delete an environment", None, 204, None, "admin"),
    ("get", f"{ENV}/backups", "List backups", None, 200, BackupPage, "reader"),
    ("get", f"{ENV}/backups/{{backup}}", "A backup: size, duration, sha256, tool versions, "
     "whether its artifact is still stored", None, 200, None, "reader"),
    ("delete", f"{ENV}/backups/{{backup}}", "Delete a backup (artifact and row; audited)",
     None, 204, None, "admin"),
    ("post", f"{ENV}/backups/{{backup}}/download", "A signed download URL valid for 15 "
     "minutes (audited)", None, 200, None, "operator"),
    ("get", "/api/projects/{project}/scripts", "The script catalogue", None, 200, None,
     "reader"),
    ("post", "/api/projects/{project}/scripts", "Add an approved script", ScriptDefinition,
     201, None, "admin"),
    ("delete", "/api/projects/{project}/scripts/{script}", "Remove a script", None, 204,
     None, "admin"),
    *[("post", path, f"Request a {op.replace('_', ' ')} (202 + task)", OPERATION_BODIES[op],
       202, TaskOut, "operator") for op, path in OPERATION_PATHS.items()],
    ("get", "/api/tasks", "List tasks (filters: project, environment, status; cursor)", None,
     200, TaskPage, "reader"),
    ("get", "/api/tasks/{id}", "Read a task", None, 200, TaskOut, "reader"),
    ("get", "/api/tasks/{id}/logs", "Read log lines after a sequence number", None, 200,
     LogsOut, "reader"),
    ("post", "/api/tasks/{id}/cancel", "Cancel a task", None, 202, TaskOut, "operator"),
    ("get", "/api/activity", "The activity log (filters: project, actor, since)", None, 200,
     ActivityPage, "reader"),
    ("get", "/api/me", "Who you are and your roles", None, 200, MeOut, "authenticated"),
    ("get", "/api/approvals", "Tasks awaiting your approval", None, 200, TaskPage,
     "authenticated"),
    ("post", "/api/tasks/{id}/approvals", "Approve or reject a task", Decision, 201, None,
     "approver of the environment"),
    ("get", f"{ENV}/protection", "The environment's approval rule", None, 200, None,
     "reader"),
    ("put", f"{ENV}/protection", "Protect operations with approvals", Protection, 200, None,
     "admin"),
    ("delete", f"{ENV}/protection", "Remove the approval rule", None, 204, None, "admin"),
    ("get", "/api/projects/{project}/roles", "Role assignments of a project", None, 200,
     None, "reader"),
    ("get", "/api/projects/{project}/notification-rules", "Notification rules", None, 200,
     None, "reader"),
    ("post", "/api/projects/{project}/notification-rules", "Add a notification rule",
     RuleInput, 201, None, "admin"),
    ("get", "/api/tasks/{id}/notifications", "Deliveries of a task's events", None, 200,
     None, "reader"),
    ("get", f"{ENV}/backup-schedules", "Backup schedules", None, 200, None, "reader"),
    ("post", f"{ENV}/backup-schedules", "Add a backup schedule", ScheduleInput, 201, None,
     "admin"),
    ("post", f"{ENV}/extend", "Extend a sandbox's lifetime", ExtendInput, 200,
     EnvironmentOut, "operator"),
    ("get", "/api/resources", "Registered execution resources (agent pools, database "
     "connections, Kubernetes clusters, App Service sites) and their grants", None, 200,
     None, "any"),
    ("post", "/api/resources", "Register a connection, cluster or site (names and "
     "non-secret metadata only)", ResourceCreate, 201, None, "admin (global)"),
    ("get", "/api/resources/{resource}", "A resource (id or kind:name) and its grants", None,
     200, None, "any"),
    ("delete", "/api/resources/{resource}", "Unregister a resource (its grants go too)",
     None, 204, None, "admin (global)"),
    ("get", "/api/resources/{resource}/grants", "The projects a resource is granted to",
     None, 200, None, "any"),
    ("post", "/api/resources/{resource}/grants", "Grant a resource to a project (or * for "
     "every project; clusters: with namespaces)", GrantCreate, 201, None, "admin (global)"),
    ("delete", "/api/resources/{resource}/grants/{grant}", "Withdraw a grant (jobs still "
     "waiting for an agent fail with the reason)", None, 204, None, "admin (global)"),
]

QUERY = {
    "/api/tasks": ["project", "environment", "status", "cursor", "limit"],
    "/api/tasks/{id}/logs": ["after", "limit"],
    "/api/activity": ["project", "actor", "since", "cursor", "limit"],
    "/api/resources": ["kind"],
}


def _params(path: str, method: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                    # a resource is named by id or kind:name
                    "pattern": "^[A-Za-z0-9._:-]+$" if name == "resource"
                    else "^[A-Za-z0-9._-]+$"}}
        for name in ("project", "env", "script", "id", "resource", "grant", "backup")
        if f"{{{name}}}" in path]
    for name in QUERY.get(path, []):
        schema: dict[str, Any] = {"type": "string", "maxLength": 200}
        if name in ("limit",):
            schema = {"type": "integer", "minimum": 1, "maximum": 200}
        if name == "after":
            schema = {"type": "integer", "minimum": 0}
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
    if method == "post" and path in OPERATION_PATHS.values():
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 200}})
    return params


def build_openapi() -> dict[str, Any]:
    models = {m for r in ROUTES for m in (r[3], r[5]) if m is not None} | {Problem}
    _, schema = models_json_schema(
        [(m, "validation" if m in {r[3] for r in ROUTES} else "serialization")
         for m in sorted(models, key=lambda m: m.__name__)],
        by_alias=True, ref_template="#/components/schemas/{model}")
    problem = {"description": "Problem", "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, status, response, role in ROUTES:
        op: dict[str, Any] = {
            "summary": summary, "description": f"Needs the {role} role.",
            "operationId": f"{method}_{path}".replace("/", "_").replace("{", "").replace(
                "}", ""),
            "parameters": _params(path, method),
            "responses": {"401": problem, "403": problem, "404": problem, "400": problem,
                          "422": problem, "409": problem, "503": problem},
            "security": [{"easyAuth": []}, {"functionKey": []}],
        }
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}
        if response is None:
            op["responses"][str(status)] = {"description": "Done"} if status == 204 else {
                "description": "OK", "content": {"application/json": {"schema": {}}}}
        else:
            op["responses"][str(status)] = {"description": "OK", "content": {
                "application/json": {"schema": {"$ref":
                                                f"#/components/schemas/{response.__name__}"}}}}
        paths.setdefault(path, {})[method] = op
    paths["/api/health"] = {"get": {"summary": "Liveness and database status",
                                    "operationId": "get_api_health", "security": [],
                                    "responses": {"200": {"description": "Up"},
                                                  "503": {"description": "Degraded"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "CloudOps Control Plane API", "version": "1.0.0",
                 "description": "Operations on a project's environments as tasks with live "
                                "status and logs. Operation POSTs answer 202 with the task."},
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {
                "easyAuth": {"type": "apiKey", "in": "header", "name": "x-ms-client-principal",
                             "description": "Set by Azure Easy Auth / Static Web Apps"},
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                "description": "A named pipeline key"},
            },
        },
    }
