"""The OpenAPI 3.1 document, generated from the same models the handlers validate with.

Response shapes are pydantic models too (``*Out``), and the tests check the views in
``shared.api.views`` against them, so the document cannot drift from the responses.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from shared.grants.resources import GrantCreate, ResourceCreate
from shared.notify.rules import RuleInput
from shared.schedules.inputs import ExtendInput, ScheduleInput, ScheduleUpdate
from shared.tasks.approvals import Decision, Protection
from shared.tasks.freezes import Freezes, OverrideRequest, Window
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


class EnvironmentDetailOut(EnvironmentOut):
    protection: ProtectionOut | None = Field(
        description="the approval rule (null: not protected)")


class BackupOut(Out):
    id: str
    kind: Literal["backup", "safety"] = Field(
        description="'safety': the copy a restore took of the state it replaced; never "
                    "'latest' and never used to seed a sandbox")
    environmentId: str
    taskId: str | None
    sizeBytes: int
    sha256: str
    durationMs: int | None = Field(default=None, description="how long the dump took")
    toolVersions: dict[str, str] = Field(default_factory=dict,
                                         description="e.g. {\"pg_dump\": \"18.1\"}")
    createdAt: str
    takenBy: str | None = Field(default=None, description="in lists: who requested the "
                                "task that took it (scheduler for a scheduled backup)")
    takenByName: str | None = Field(default=None, description="takenBy for display")


class BackupDetailOut(BackupOut):
    artifactStored: bool = Field(description="false: storage no longer holds the artifact")


class BackupDownloadOut(Out):
    url: str = Field(description="signed, valid for 15 minutes")
    expiresAt: str
    sha256: str
    sizeBytes: int
    fileName: str


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


class ScriptParameterOut(Out):
    name: str
    type: Literal["string", "integer", "number", "boolean"]
    required: bool
    default: str | int | float | bool | None
    pattern: str | None
    enum: list[str | int | float | bool] | None
    description: str
    secret: bool = Field(default=False, description="masked in task JSON, argv, logs and "
                                                    "errors; only the agent job sees it")


class ScriptOut(Out):
    name: str
    description: str
    argv: list[str]
    parameters: list[ScriptParameterOut]
    timeoutSeconds: int


class RoleOut(Out):
    id: str
    projectId: str | None = Field(description="null: a global assignment")
    principalType: Literal["user", "group", "service"]
    principalId: str
    role: Literal["reader", "operator", "admin"]
    createdBy: str
    createdAt: str


class ApproverOut(Out):
    type: Literal["user", "group"]
    id: str


class ProtectionOut(Out):
    operations: list[str]
    approvers: list[ApproverOut]
    requiredApprovals: int
    allowSelfApproval: bool
    timeoutMinutes: float


class FreezeOverrideOut(Out):
    until: str
    by: str
    reason: str


class FreezesOut(Out):
    windows: list[Window]
    override: FreezeOverrideOut | None = Field(
        description="an admin's override lifting every window until ``until``")
    updatedBy: str | None
    updatedAt: str | None


class DecisionOut(Out):
    task: TaskOut
    approval: dict[str, Any] = Field(description="the approval state after this decision")


class RuleOut(Out):
    id: str
    projectId: str
    name: str
    events: list[str]
    environments: list[str] = Field(description="environment slugs; empty: all")
    channel: Literal["teams", "email"]
    webhookUrl: str | None = Field(description="masked; never shown back in full")
    hasWebhookUrl: bool
    recipients: list[str]
    enabled: bool
    createdBy: str
    createdAt: str
    updatedAt: str


class DeliveryOut(Out):
    id: str
    eventId: str
    event: str
    ruleId: str
    rule: str
    channel: str
    status: str
    attempts: int
    lastError: str | None
    createdAt: str
    deliveredAt: str | None


class NotificationTestOut(Out):
    ruleId: str
    channel: Literal["teams", "email"]
    delivered: bool
    error: str | None = Field(description="the channel's answer when not delivered "
                                          "(never the webhook URL)")


class DeliveriesOut(Out):
    taskId: str
    items: list[DeliveryOut]


class ScheduleOut(Out):
    id: str
    environmentId: str
    cron: str
    timeZone: str
    retainCount: int | None
    retainDays: int | None
    enabled: bool
    createdBy: str
    createdAt: str
    lastSlotAt: str | None
    nextSlotAt: str | None
    nextSlots: list[str] = Field(default_factory=list,
                                 description="the next runs (UTC; up to 5; empty: paused)")


class PoolOut(Out):
    id: str
    name: str
    description: str
    createdAt: str
    agentCount: int | None = None
    onlineCount: int | None = None


class RegistrationTokenOut(Out):
    id: str
    pool: str
    token: str = Field(description="shown once; give it to the agent's `register`")
    expiresAt: str
    multiUse: bool
    maxUses: int | None


class AgentOut(Out):
    id: str
    name: str
    pool: str
    poolId: str
    labels: list[str]
    status: str
    enabled: bool
    version: str | None
    os: str | None
    capacity: int
    lastHeartbeatAt: str | None
    keyExpiresAt: str | None
    keyRotatedAt: str | None
    revokedAt: str | None
    createdAt: str


class AgentProtocolOut(BaseModel):
    """Agent protocol answers: the fields the agent reads are listed; the protocol may add
    more (agents ignore what they do not know)."""

    model_config = ConfigDict(extra="allow")


class AgentKeyOut(AgentProtocolOut):
    """A key handed to an agent (at registration, and at each rotation)."""

    key: str
    keyExpiresAt: str


class AgentRegisteredOut(AgentKeyOut):
    """The registered agent, with its first key."""

    agentId: str
    name: str
    pool: str
    labels: list[str]


class HeartbeatOut(AgentProtocolOut):
    cancel: list[str]
    abandon: list[str]
    enabled: bool
    keyExpiresAt: str
    rotateKey: bool


class JobOut(AgentProtocolOut):
    id: str
    taskId: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    leaseExpiresAt: str | None


class LogsAcceptedOut(AgentProtocolOut):
    accepted: int
    cancel: bool


class JobStatusOut(AgentProtocolOut):
    jobId: str
    status: str


class NegotiateOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str
    accessToken: str


class GroupOut(Out):
    group: str
    connectionId: str


class ArtifactOut(Out):
    name: str
    sizeBytes: int
    sha256: str


class HealthOut(Out):
    status: Literal["ok", "degraded"]
    database: dict[str, Any]


class AnyObject(BaseModel):
    """A JSON object whose shape is its own standard (e.g. this OpenAPI document)."""

    model_config = ConfigDict(extra="allow")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


class GrantOut(Out):
    id: str
    resourceId: str
    projectId: str | None
    project: str = Field(description="the project's slug, or * for every project")
    namespaces: list[str] | None
    createdBy: str
    createdAt: str


class ResourceOut(Out):
    id: str
    kind: Literal["pool", "connection", "cluster", "site"]
    name: str
    description: str
    metadata: dict[str, Any]
    createdBy: str
    createdAt: str
    grants: list[GrantOut] | None = None


class PipelineKeyOut(Out):
    """A pipeline key as listed: never the key, never its hash."""

    id: str
    name: str
    createdBy: str
    createdAt: str | None
    expiresAt: str | None
    rotatedAt: str | None
    previousKeyExpiresAt: str | None
    lastUsedAt: str | None
    revokedAt: str | None


class PipelineKeyIssuedOut(PipelineKeyOut):
    key: str = Field(description="shown once, here; store it as a secret variable")


class RolesSourceOut(Out):
    roles: list[str]


def _page(model: type[BaseModel]) -> type[BaseModel]:
    return type(f"{model.__name__.removesuffix('Out')}Page", (Out,), {
        "__annotations__": {"items": list[model], "nextCursor": str | None}})  # type: ignore[valid-type]  # built at runtime


TaskPage, ProjectPage, EnvironmentPage, BackupPage, ActivityPage = (
    _page(m) for m in (TaskOut, ProjectOut, EnvironmentOut, BackupOut, ActivityOut))
ScriptPage, RolePage, RulePage, SchedulePage, PoolPage, AgentPage = (
    _page(m) for m in (ScriptOut, RoleOut, RuleOut, ScheduleOut, PoolOut, AgentOut))
ResourcePage, GrantPage, PipelineKeyPage = (
    _page(m) for m in (ResourceOut, GrantOut, PipelineKeyOut))

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
    ("get", ENV, "Read an environment", None, 200, EnvironmentDetailOut, "reader"),
    ("patch", ENV, "Change an environment", EnvironmentUpdate, 200, EnvironmentOut, "admin"),
    ("delete", ENV, "Delete an environment", None, 204, None, "admin"),
    ("get", f"{ENV}/backups", "List backups", None, 200, BackupPage, "reader"),
    ("get", f"{ENV}/backups/{{backup}}", "A backup: size, duration, sha256, tool versions, "
     "whether its artifact is still stored", None, 200, BackupDetailOut, "reader"),
    ("delete", f"{ENV}/backups/{{backup}}", "Delete a backup (artifact and row; audited)",
     None, 204, None, "admin"),
    ("post", f"{ENV}/backups/{{backup}}/download", "A signed download URL valid for 15 "
     "minutes (audited)", None, 200, BackupDownloadOut, "operator"),
    ("get", "/api/projects/{project}/scripts", "The script catalogue", None, 200, ScriptPage,
     "reader"),
    ("post", "/api/projects/{project}/scripts", "Add an approved script", ScriptDefinition,
     201, ScriptOut, "admin"),
    ("put", "/api/projects/{project}/scripts/{script}", "Change a script: description, "
     "argv, typed parameters, timeout (its name stays)", ScriptDefinition, 200, ScriptOut,
     "admin"),
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
    ("post", "/api/tasks/{id}/approvals", "Approve or reject a task", Decision, 201,
     DecisionOut, "approver of the environment"),
    ("get", f"{ENV}/protection", "The environment's approval rule (404: not protected)",
     None, 200, ProtectionOut, "reader"),
    ("put", f"{ENV}/protection", "Protect operations with approvals", Protection, 200,
     ProtectionOut, "admin"),
    ("delete", f"{ENV}/protection", "Remove the approval rule", None, 204, None, "admin"),
    ("get", f"{ENV}/freezes", "Change freezes and business hours of the environment", None,
     200, FreezesOut, "reader"),
    ("put", f"{ENV}/freezes", "Set the freeze and business-hours windows (held or refused "
     "operations; held tasks re-check at once)", Freezes, 200, FreezesOut, "admin"),
    ("post", f"{ENV}/freezes/override", "Lift every window for a while, with a recorded "
     "reason (held tasks run)", OverrideRequest, 201, FreezesOut, "admin"),
    ("get", "/api/projects/{project}/roles", "Role assignments of a project", None, 200,
     RolePage, "reader"),
    ("post", "/api/projects/{project}/roles", "Grant a role on a project", None, 201,
     RoleOut, "admin"),
    ("delete", "/api/projects/{project}/roles/{assignment}", "Revoke a project role", None,
     204, None, "admin"),
    ("get", "/api/roles", "Global role assignments", None, 200, RolePage, "admin (global)"),
    ("post", "/api/roles", "Grant a global role", None, 201, RoleOut, "admin (global)"),
    ("delete", "/api/roles/{assignment}", "Revoke a global role", None, 204, None,
     "admin (global)"),
    ("get", "/api/projects/{project}/notification-rules", "Notification rules", None, 200,
     RulePage, "reader"),
    ("post", "/api/projects/{project}/notification-rules", "Add a notification rule",
     RuleInput, 201, RuleOut, "admin"),
    ("get", "/api/projects/{project}/notification-rules/{rule}", "Read a notification rule",
     None, 200, RuleOut, "reader"),
    ("put", "/api/projects/{project}/notification-rules/{rule}",
     "Change a notification rule (without webhookUrl: the stored URL is kept)", RuleInput,
     200, RuleOut, "admin"),
    ("delete", "/api/projects/{project}/notification-rules/{rule}",
     "Delete a notification rule", None, 204, None, "admin"),
    ("post", "/api/projects/{project}/notification-rules/{rule}/test",
     "Send a test message through the rule's channel now (the outcome is the answer)",
     None, 200, NotificationTestOut, "admin"),
    ("get", "/api/tasks/{id}/notifications", "Deliveries of a task's events", None, 200,
     DeliveriesOut, "reader"),
    ("get", f"{ENV}/backup-schedules", "Backup schedules", None, 200, SchedulePage, "reader"),
    ("post", f"{ENV}/backup-schedules", "Add a backup schedule", ScheduleInput, 201,
     ScheduleOut, "admin"),
    ("get", f"{ENV}/backup-schedules/{{schedule}}", "Read a backup schedule", None, 200,
     ScheduleOut, "reader"),
    ("put", f"{ENV}/backup-schedules/{{schedule}}", "Change a backup schedule (a slot of the "
     "new expression already past counts as fired: no backup starts at once)",
     ScheduleUpdate, 200, ScheduleOut, "admin"),
    ("delete", f"{ENV}/backup-schedules/{{schedule}}", "Delete a backup schedule", None, 204,
     None, "admin"),
    ("post", f"{ENV}/extend", "Extend a sandbox's lifetime", ExtendInput, 200,
     EnvironmentOut, "operator"),
    ("get", "/api/resources", "Registered execution resources (agent pools, database "
     "connections, Kubernetes clusters, App Service sites) and their grants", None, 200,
     ResourcePage, "any"),
    ("post", "/api/resources", "Register a connection, cluster or site (names and "
     "non-secret metadata only)", ResourceCreate, 201, ResourceOut, "admin (global)"),
    ("get", "/api/resources/{resource}", "A resource (id or kind:name) and its grants", None,
     200, ResourceOut, "any"),
    ("delete", "/api/resources/{resource}", "Unregister a resource (its grants go too)",
     None, 204, None, "admin (global)"),
    ("get", "/api/resources/{resource}/grants", "The projects a resource is granted to",
     None, 200, GrantPage, "any"),
    ("post", "/api/resources/{resource}/grants", "Grant a resource to a project (or * for "
     "every project; clusters: with namespaces)", GrantCreate, 201, GrantOut,
     "admin (global)"),
    ("delete", "/api/resources/{resource}/grants/{grant}", "Withdraw a grant (jobs still "
     "waiting for an agent fail with the reason)", None, 204, None, "admin (global)"),
    ("get", "/api/pipeline-keys", "Pipeline keys (never the keys themselves)", None, 200,
     PipelineKeyPage, "admin (global)"),
    ("post", "/api/pipeline-keys", "Issue a pipeline key (shown once) for service {name}",
     None, 201, PipelineKeyIssuedOut, "admin (global)"),
    ("post", "/api/pipeline-keys/{key}/rotate", "Rotate a pipeline key: the old one works "
     "for a grace period", None, 200, PipelineKeyIssuedOut, "admin (global)"),
    ("delete", "/api/pipeline-keys/{key}", "Revoke a pipeline key (and its previous key)",
     None, 204, None, "admin (global)"),
    ("post", "/api/auth/roles", "Static Web Apps rolesSource: app roles and Entra groups of "
     "the signed-in user", None, 200, RolesSourceOut, "the signed-in user (SWA)"),
    # agent pools (people) and the agent protocol (agents, with their own bearer key)
    ("get", "/api/pools", "Agent pools with agent counts", None, 200, PoolPage,
     "any role"),
    ("post", "/api/pools", "Create an agent pool", None, 201, PoolOut, "admin (global)"),
    ("post", "/api/pools/{pool}/registration-tokens", "Issue an agent registration token",
     None, 201, RegistrationTokenOut, "admin (global)"),
    ("get", "/api/pools/{pool}/agents", "Agents of a pool", None, 200, AgentPage,
     "any role"),
    ("post", "/api/pools/{pool}/agents/{agent}/{action}",
     "Enable, disable or revoke an agent (action: enable | disable | revoke)", None, 200,
     AgentOut, "admin (global)"),
    ("post", "/api/agent/register", "Register an agent with a registration token", None,
     201, AgentRegisteredOut, "agent (registration token in the body)"),
    ("post", "/api/agent/key", "Rotate the agent's key", None, 200, AgentKeyOut, "agent"),
    ("post", "/api/agent/heartbeat", "Agent heartbeat: jobs to cancel or abandon", None, 200,
     HeartbeatOut, "agent"),
    ("get", "/api/agent/jobs/next", "Long-poll for the next job (204: none yet)", None, 200,
     JobOut, "agent"),
    ("post", "/api/agent/jobs/{job}/logs", "Append a job's log lines and progress", None,
     202, LogsAcceptedOut, "agent"),
    ("post", "/api/agent/jobs/{job}/result", "Report a job's outcome", None, 200,
     JobStatusOut, "agent"),
    ("post", "/api/agent/jobs/{job}/release", "Hand a job back unfinished", None, 200,
     JobStatusOut, "agent"),
    # realtime, artifacts, the document itself
    ("post", "/api/negotiate", "Where and how to connect to SignalR", None, 200,
     NegotiateOut, "authenticated"),
    ("post", "/api/realtime/groups/{group}", "Join a live-update group (project:ID, task:ID,"
     " agents)", None, 200, GroupOut, "reader of the group's project"),
    ("delete", "/api/realtime/groups/{group}", "Leave a live-update group", None, 204, None,
     "authenticated"),
    ("get", "/api/artifacts/{name}", "Download an artifact (local artifact store)", None, 200,
     None, "a signed artifact URL"),
    ("put", "/api/artifacts/{name}", "Upload an artifact (local artifact store)", None, 201,
     ArtifactOut, "a signed artifact URL"),
    ("get", "/api/openapi.json", "This document", None, 200, AnyObject, "none"),
    ("get", "/api/docs/{asset}", "Swagger UI for this document", None, 200, None, "none"),
    ("get", "/api/health", "Liveness and database status (503: degraded)", None, 200,
     HealthOut, "none"),
]

# Routes whose request body is the agent protocol's or a small admin form: documented as
# objects with the fields each takes (the handlers validate them).
FREE_BODIES: dict[tuple[str, str], str] = {
    ("post", "/api/projects/{project}/roles"):
        '{principalType: "user" | "group" | "service", principalId, role: "reader" | '
        '"operator" | "admin"}',
    ("post", "/api/roles"): "as for a project's roles",
    ("post", "/api/pools"): "{name, description}",
    ("post", "/api/pools/{pool}/registration-tokens"): "{expiresInMinutes?, multiUse?, maxUses?}",
    ("post", "/api/agent/register"): "{token, name, labels?, version?, os?, capacity?}",
    ("post", "/api/agent/heartbeat"): "{running?, version?, os?}",
    ("post", "/api/agent/jobs/{job}/logs"): "{lines, progress?}",
    ("post", "/api/agent/jobs/{job}/result"): "{status, result?, error?}",
    ("post", "/api/negotiate"): "{} (optional)",
    ("post", "/api/realtime/groups/{group}"): "{connectionId}",
    ("delete", "/api/realtime/groups/{group}"): "{connectionId}",
}
NO_AUTH = {"/api/health", "/api/openapi.json", "/api/docs/{asset}"}
AGENT_AUTH = {path for _, path, *_ in ROUTES if path.startswith("/api/agent/")}

# Tags group the document the way the README does; the first matching prefix wins.
TAGS: list[tuple[str, str, str]] = [
    ("Agents", "/api/agent/", "The self-hosted agent's protocol (bearer agent key)"),
    ("Agents", "/api/pools", "Agent pools, registration tokens and agents"),
    ("Operations", f"{ENV}/deployments", ""),
    ("Access", "/api/roles", "Role assignments, protected environments, approvals"),
    ("Access", "/api/approvals", ""),
    ("Realtime", "/api/negotiate", "SignalR negotiation and live-update groups"),
    ("Realtime", "/api/realtime/", ""),
    ("Meta", "/api/health", "Health, this document, artifacts"),
    ("Meta", "/api/openapi.json", ""),
    ("Meta", "/api/docs/", ""),
    ("Meta", "/api/artifacts/", ""),
    ("Activity", "/api/activity", "The audit trail"),
    ("Activity", "/api/me", ""),
    ("Access", "/api/resources", ""),
    ("Access", "/api/pipeline-keys", ""),
    ("Access", "/api/auth/", ""),
]
TAG_DESCRIPTIONS = {
    "Projects": "Projects, environments and the script catalogue",
    "Operations": "Operations on an environment: each answers 202 with its task",
    "Tasks": "Tasks, their logs and cancellation",
    "Schedules": "Backup schedules and sandbox lifetime",
    "Notifications": "Notification rules and deliveries",
    **{tag: text for tag, _, text in TAGS if text},
}


def tag_of(method: str, path: str) -> str:
    if method == "post" and path in OPERATION_PATHS.values():
        return "Operations"
    if path.endswith(("/roles", "/protection", "/approvals")) or "/roles/" in path \
            or "/freezes" in path:
        return "Access"
    if "notification" in path:
        return "Notifications"
    if "/backup-schedules" in path or path.endswith("/extend"):
        return "Schedules"
    for tag, prefix, _ in TAGS:
        if path.startswith(prefix):
            return tag
    if path.startswith("/api/tasks"):
        return "Tasks"
    return "Projects"


QUERY = {
    "/api/tasks": ["project", "environment", "status"],
    "/api/tasks/{id}/logs": ["after", "limit"],
    "/api/activity": ["project", "actor", "since"],
    "/api/resources": ["kind"],
}
PAGES = {TaskPage, ProjectPage, EnvironmentPage, BackupPage, ActivityPage, ScriptPage,
         RolePage, RulePage, SchedulePage, PoolPage, AgentPage, ResourcePage, GrantPage,
         PipelineKeyPage}
# every list answers a page: ?limit= rows (default 50) and ?cursor= the nextCursor of the
# page before; a cursor is opaque (base64url of the last row's sort key)
PAGED = {path for method, path, *_, response, _ in ROUTES
         if method == "get" and response in PAGES}
PAGE_PARAMS: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "required": False,
     "description": "Rows per page (default 50).",
     "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    {"name": "cursor", "in": "query", "required": False,
     "description": "The nextCursor of the previous page; omit for the first page.",
     "schema": {"type": "string", "maxLength": 1000}}]


def _params(path: str, method: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                    "pattern": "^[A-Za-z0-9._:-]+$"}}
        for name in re.findall(r"\{(\w+)\}", path)]
    for name in QUERY.get(path, []):
        schema: dict[str, Any] = {"type": "string", "maxLength": 200}
        if name in ("limit",):
            schema = {"type": "integer", "minimum": 1, "maximum": 200}
        if name == "after":
            schema = {"type": "integer", "minimum": 0}
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
    if method == "get" and path in PAGED:
        params.extend(PAGE_PARAMS)
    if method == "post" and path in OPERATION_PATHS.values():
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "description": "Replays the task this caller started with the same "
                                      "key for the same request (route and body; answered "
                                      "with Idempotent-Replayed: true). The key sent with a "
                                      "different request answers 422 naming the key.",
                       "schema": {"type": "string", "minLength": 1, "maxLength": 200}})
    return params


def build_openapi() -> dict[str, Any]:
    models = {m for r in ROUTES for m in (r[3], r[5]) if m is not None} | {Problem}
    models -= {AnyObject}
    _, schema = models_json_schema(
        [(m, "validation" if m in {r[3] for r in ROUTES} else "serialization")
         for m in sorted(models, key=lambda m: m.__name__)],
        by_alias=True, ref_template="#/components/schemas/{model}")
    problem = {"description": "Problem", "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, status, response, role in ROUTES:
        security: list[dict[str, list[str]]] = [{"easyAuth": []}, {"functionKey": []}]
        if path in NO_AUTH:
            security = []
        elif path in AGENT_AUTH:
            security = [] if path == "/api/agent/register" else [{"agentKey": []}]
        op: dict[str, Any] = {
            "summary": summary,
            "description": "No authentication." if role == "none" else f"Needs: {role}.",
            "tags": [tag_of(method, path)],
            "operationId": f"{method}_{path}".replace("/", "_").replace("{", "").replace(
                "}", "").replace(".", "_"),
            "parameters": _params(path, method),
            "responses": {} if path in NO_AUTH else {
                "401": problem, "403": problem, "404": problem, "400": problem,
                "422": problem, "409": problem, "503": problem},
            "security": security,
        }
        if body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}
        elif (method, path) in FREE_BODIES:
            op["requestBody"] = {"required": path != "/api/negotiate", "content": {
                "application/json": {"schema": {
                    "type": "object", "description": FREE_BODIES[(method, path)]}}}}
        op["responses"][str(status)] = _success(path, status, response)
        paths.setdefault(path, {})[method] = op
    paths["/api/health"]["get"]["responses"]["503"] = {
        "description": "Degraded: the database is down", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/HealthOut"}}}}
    paths["/api/agent/jobs/next"]["get"]["responses"]["204"] = {
        "description": "No job within the wait"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "CloudOps Control Plane API", "version": "1.0.0",
                 "description": "Operations on a project's environments as tasks with live "
                                "status and logs. Operation POSTs answer 202 with the task."},
        "tags": [{"name": name, "description": text}
                 for name, text in TAG_DESCRIPTIONS.items()],
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {
                "easyAuth": {"type": "apiKey", "in": "header", "name": "x-ms-client-principal",
                             "description": "Set by Azure Easy Auth / Static Web Apps"},
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                "description": "A named pipeline key"},
                "agentKey": {"type": "http", "scheme": "bearer",
                             "description": "An agent's key from register or key rotation"},
            },
        },
    }


def _success(path: str, status: int, response: type[BaseModel] | None) -> dict[str, Any]:
    """The success response with its schema: JSON models by reference, files as binary."""
    if status == 204:
        return {"description": "Done (no content)"}
    if path == "/api/artifacts/{name}":
        return {"description": "The artifact's bytes", "content": {
            "application/octet-stream": {"schema": {"type": "string",
                                                    "contentMediaType":
                                                    "application/octet-stream"}}}}
    if path == "/api/docs/{asset}":
        return {"description": "The Swagger UI page or one of its assets", "content": {
            "text/html": {"schema": {"type": "string"}},
            "text/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}}}}
    assert response is not None, path
    schema: dict[str, Any] = (
        {"type": "object"} if response is AnyObject
        else {"$ref": f"#/components/schemas/{response.__name__}"})
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}
