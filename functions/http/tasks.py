"""Tasks: list, read, read logs from a sequence number, cancel; and the activity log."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

import azure.durable_functions as df
import azure.functions as func

from functions.http._common import access_of, api, caller, page_limit
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from functions.wake import wake
from shared.api.views import activity_json, log_line_json, task_json
from shared.auth import Principal, require
from shared.domain.models import Task
from shared.domain.task_states import TaskStatus
from shared.errors import BadRequest, Forbidden, NotFound
from shared.services import services
from shared.store import activity as activity_store
from shared.store import projects as project_store
from shared.store import tasks as task_store
from shared.tasks.service import TaskService

bp = df.Blueprint()
STATUSES = {s.value for s in TaskStatus}


def _readable_task(principal: Principal, task_id: str, need: str = "reader") -> Task:
    with services().db.transaction() as conn:
        task = task_store.get_task(conn, task_id)
        access = access_of(conn, principal)
        if not access.allows(task.project_id, "reader"):
            raise NotFound(f"task {task_id} not found", field="task")  # don't leak existence
        require(access, task.project_id, need, "changing this task")
    return task


@bp.route(route="tasks", methods=["GET"])
@api
def list_tasks(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    page = page_request(req, int)
    statuses = [s for s in (req.params.get("status") or "").split(",") if s]
    if any(s not in STATUSES for s in statuses):
        raise BadRequest(f"status must be among {', '.join(sorted(STATUSES))}", field="status")
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        project_ids = access.readable_projects
        environment_id = None
        if req.params.get("project"):
            project = project_store.get_project(conn, req.params["project"])
            require(access, project.id, "reader", "reading this project")
            project_ids = [project.id]
            if req.params.get("environment"):
                environment_id = project_store.get_environment(
                    conn, project.id, req.params["environment"]).id
        elif req.params.get("environment"):
            raise BadRequest("environment needs project", field="environment")
        items = task_store.list_tasks(conn, project_ids=project_ids,
                                      environment_id=environment_id,
                                      statuses=statuses or None,
                                      before_seq=page.after[0] if page.after else None,
                                      limit=page.fetch)
    return json_response(page_json(items, page, lambda t: (t.seq,), task_json))


@bp.route(route="tasks/{id}", methods=["GET"])
@api
def get_task(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(task_json(_readable_task(caller(req), req.route_params["id"])))


@bp.route(route="tasks/{id}/logs", methods=["GET"])
@api
def task_logs(req: func.HttpRequest) -> func.HttpResponse:
    task = _readable_task(caller(req), req.route_params["id"])
    raw_after = req.params.get("after", "0")
    if not raw_after.isdigit():
        raise BadRequest("after must be a non-negative integer", field="after")
    limit = page_limit(req, default=1000, maximum=5000)
    lines = services().logs.read(str(task.id), after=int(raw_after), limit=limit)
    return json_response({"taskId": str(task.id), "items": [log_line_json(x) for x in lines],
                          "last": lines[-1].seq if lines else int(raw_after),
                          "status": task.status})


@bp.route(route="tasks/{id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@api
async def cancel_task(req: func.HttpRequest,
                      client: df.DurableOrchestrationClient) -> func.HttpResponse:
    principal = caller(req)
    task = await asyncio.to_thread(_readable_task, principal, req.route_params["id"],
                                   "operator")
    svc = TaskService(services())
    done = await asyncio.to_thread(svc.request_cancel, task.id, actor=principal.actor)
    await wake(client, str(task.id), "cancel", {"by": principal.name or principal.actor})
    if done.granted is not None:
        await wake(client, str(done.granted), "environment_granted")
    assert done.task is not None
    return json_response(task_json(done.task), 202, {"Location": f"/api/tasks/{task.id}"})


@bp.route(route="activity", methods=["GET"])
@api
def list_activity(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    page = page_request(req, int)
    since = None
    if req.params.get("since"):
        try:
            since = datetime.fromisoformat(req.params["since"].replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("since must be an ISO 8601 timestamp", field="since") from None
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        project_id: UUID | None = None
        if req.params.get("project"):
            project_id = project_store.get_project(conn, req.params["project"]).id
            require(access, project_id, "reader", "reading this project's activity")
        elif access.global_role is None:
            raise Forbidden("reading all activity needs a global role; filter by project",
                            field="project")
        entries = activity_store.list_activity(conn, project_id=project_id,
                                               actor=req.params.get("actor"), since=since,
                                               before_id=page.after[0] if page.after else None,
                                               limit=page.fetch)
    return json_response(page_json(entries, page, lambda e: (e.id,), activity_json))


@bp.route(route="me", methods=["GET"])
@api
def me(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
    return json_response({
        "id": principal.id, "name": principal.name, "kind": principal.kind,
        "actor": principal.actor, "globalRole": access.global_role,
        "projectRoles": {str(k): v for k, v in access.project_roles.items()},
        "appRoles": sorted(principal.roles), "groups": sorted(principal.groups)})
