"""Role assignments, protected environments and approvals."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from uuid import UUID

import azure.durable_functions as df
import azure.functions as func
from pydantic import StringConstraints, ValidationInfo, field_validator

from functions.http._common import (
    access_of,
    api,
    caller,
    json_body,
    readable_environment,
)
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from functions.wake import wake
from shared.api.views import iso, task_json
from shared.auth import require
from shared.auth.principal import BUILTIN_ROLES
from shared.domain.models import RoleAssignment
from shared.errors import NotFound
from shared.services import services
from shared.store import projects as project_store
from shared.store import roles as role_store
from shared.store import tasks as task_store
from shared.tasks import approvals, freezes
from shared.tasks.requests import Body
from shared.tasks.service import TaskService

bp = df.Blueprint()


class RoleGrant(Body):
    principal_type: Literal["user", "group", "service"]
    principal_id: Annotated[str, StringConstraints(min_length=1, max_length=200,
                                                   pattern=r"^[^\x00-\x1f\x7f]+$")]
    role: Literal["reader", "operator", "admin"]

    @field_validator("principal_id")
    @classmethod
    def _not_everyone(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("principal_type") == "group" and value.lower() in BUILTIN_ROLES:
            raise ValueError(f"{value} is everyone (signed in or not), not a group: it "
                             "cannot be granted a role")
        return value


def role_json(a: RoleAssignment) -> dict[str, Any]:
    return {"id": str(a.id), "projectId": str(a.project_id) if a.project_id else None,
            "principalType": a.principal_type, "principalId": a.principal_id,
            "role": a.role, "createdBy": a.created_by, "createdAt": iso(a.created_at)}


def _roles(req: func.HttpRequest, project_ref: str | None) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project_id = (project_store.get_project(conn, project_ref).id
                      if project_ref is not None else None)
        access = access_of(conn, principal)
        if req.method == "GET":
            require(access, project_id, "reader" if project_id else "admin",
                    "reading role assignments")
            page = page_request(req, str, str, UUID)
            return json_response(page_json(
                role_store.list_assignments(conn, project_id, after=page.after,
                                            limit=page.fetch),
                page, role_store.assignment_key, role_json))
        require(access, project_id, "admin", "granting roles")
        if req.method == "DELETE":
            assignment_id = req.route_params.get("assignment", "")
            try:
                role_store.revoke_role(conn, UUID(assignment_id), project_id=project_id,
                                      actor=principal.actor)
            except ValueError:
                raise NotFound(f"role assignment {assignment_id} not found",
                               field="assignment") from None
            return func.HttpResponse(status_code=204)
        body = json_body(req, RoleGrant)
        granted = role_store.assign_role(conn, project_id=project_id,
                                         principal_type=body.principal_type,
                                         principal_id=body.principal_id, role=body.role,
                                         actor=principal.actor)
    return json_response(role_json(granted), 201)


@bp.route(route="projects/{project}/roles", methods=["GET", "POST"])
@api
def project_roles(req: func.HttpRequest) -> func.HttpResponse:
    return _roles(req, req.route_params["project"])


@bp.route(route="projects/{project}/roles/{assignment}", methods=["DELETE"])
@api
def project_role_item(req: func.HttpRequest) -> func.HttpResponse:
    return _roles(req, req.route_params["project"])


@bp.route(route="roles", methods=["GET", "POST"])
@api
def global_roles(req: func.HttpRequest) -> func.HttpResponse:
    return _roles(req, None)


@bp.route(route="roles/{assignment}", methods=["DELETE"])
@api
def global_role_item(req: func.HttpRequest) -> func.HttpResponse:
    return _roles(req, None)


@bp.route(route="projects/{project}/environments/{env}/protection",
          methods=["GET", "PUT", "DELETE"])
@api
def protection(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project, env, access = readable_environment(conn, req, principal)
        if req.method == "GET":
            if (shown := approvals.protection_json(conn, env.id)) is None:
                raise NotFound(f"environment {env.slug} is not protected", field="env")
            return json_response(shown)
        require(access, project.id, "admin", "protecting an environment")
        if req.method == "DELETE":
            approvals.remove_protection(conn, env, actor=principal.actor)
            return func.HttpResponse(status_code=204)
        body = json_body(req, approvals.Protection)
        saved = approvals.set_protection(conn, env, body, actor=principal.actor)
    return json_response(saved.model_dump(mode="json", by_alias=True))


async def _wake_held(client: df.DurableOrchestrationClient, environment_id: str) -> None:
    """Held tasks of the environment re-check their freezes now (not at their timer)."""
    def held() -> list[str]:
        with services().db.transaction() as conn:
            return task_store.open_task_ids_for_environment(conn, environment_id)

    for task_id in await asyncio.to_thread(held):
        await wake(client, task_id, "freezes_changed", {})


@bp.route(route="projects/{project}/environments/{env}/freezes", methods=["GET", "PUT"])
@bp.durable_client_input(client_name="client")
@api
async def freeze_windows(req: func.HttpRequest,
                         client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Change freezes and business hours of an environment (admins set them)."""
    principal = caller(req)

    def run() -> tuple[dict[str, Any], str | None]:
        with services().db.transaction() as conn:
            project, env, access = readable_environment(conn, req, principal)
            if req.method == "GET":
                return freezes.get_setting(conn, env.id).to_json(), None
            require(access, project.id, "admin", "setting change freezes")
            body = json_body(req, freezes.Freezes)
            saved = freezes.set_windows(conn, env, body, actor=principal.actor)
            return saved.to_json(), str(env.id)

    out, changed = await asyncio.to_thread(run)
    if changed:
        await _wake_held(client, changed)
    return json_response(out)


@bp.route(route="projects/{project}/environments/{env}/freezes/override", methods=["POST"])
@bp.durable_client_input(client_name="client")
@api
async def freeze_override(req: func.HttpRequest,
                          client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Lift every freeze window of the environment for a while, with a recorded reason."""
    principal = caller(req)

    def run() -> tuple[dict[str, Any], str]:
        with services().db.transaction() as conn:
            project, env, access = readable_environment(conn, req, principal)
            require(access, project.id, "admin", "overriding a change freeze")
            body = json_body(req, freezes.OverrideRequest)
            saved = freezes.override(conn, env, body, actor=principal.actor,
                                     now=services().clock.now())
            return saved.to_json(), str(env.id)

    out, env_id = await asyncio.to_thread(run)
    await _wake_held(client, env_id)
    return json_response(out, 201)


@bp.route(route="tasks/{id}/approvals", methods=["POST"])
@bp.durable_client_input(client_name="client")
@api
async def decide_approval(req: func.HttpRequest,
                          client: df.DurableOrchestrationClient) -> func.HttpResponse:
    principal = caller(req)
    body = json_body(req, approvals.Decision)

    def record() -> dict[str, Any]:
        with services().db.transaction() as conn:
            task = task_store.get_task(conn, req.route_params["id"])
            if not access_of(conn, principal).allows(task.project_id, "reader"):
                raise NotFound(f"task {task.id} not found", field="task")
        # the decision commits on its own: a refusal below is recorded, not rolled back
        with services().db.transaction() as conn:
            state = approvals.decide(conn, task.id, principal, body)
            fresh = task_store.get_task(conn, task.id)
        TaskService(services()).publish(fresh)
        return {"task": task_json(fresh), "approval": state}

    result = await asyncio.to_thread(record)
    await wake(client, result["task"]["id"], "approval", {"by": principal.actor})
    return json_response(result, 201)


@bp.route(route="approvals", methods=["GET"])
@api
def pending_approvals(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    page = page_request(req, int)
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        tasks = approvals.pending_for(conn, principal, access.readable_projects,
                                      after=page.after, limit=page.fetch)
    return json_response(page_json(tasks, page, approvals.pending_key, task_json))
