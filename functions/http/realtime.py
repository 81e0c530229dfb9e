"""Real-time connection endpoints: ``POST /api/negotiate`` and group joins.

- ``POST /api/negotiate`` → ``{url, accessToken}`` for a caller holding a role somewhere
  (SignalR user id = the principal's stable id), as the official client expects from
  ``{hubUrl}/negotiate``; signed in without any role is 403.
- ``POST /api/realtime/groups/{group}`` with ``{"connectionId": "..."}`` adds the caller's
  connection to ``project:{id}`` or ``task:{id}`` (needs the reader role on that project)
  or ``agents`` (needs any role, as reading agent pools does). Unknown groups, projects,
  tasks and connections are 404; no access is 403.
- ``DELETE /api/realtime/groups/{group}`` with the same body leaves the group.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http._common import api, caller, json_body
from functions.http._responses import json_response
from shared.auth import Access, Principal, effective_role, require
from shared.errors import Forbidden, NotFound
from shared.realtime import Realtime
from shared.realtime.events import AGENTS_GROUP
from shared.services import services
from shared.store import projects as project_store
from shared.store import tasks as task_store

bp = func.Blueprint()
TOKEN_TTL_SECONDS = 3600

def realtime() -> Realtime:
    return services().realtime


class GroupBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # Connection ids are random and told only to the client that owns the connection, so
    # presenting one is proof enough of owning it (the service offers no owner lookup).
    connection_id: str = Field(min_length=1, max_length=256, alias="connectionId")


def _uuid(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"{what} {raw} not found", field="group") from None


def authorize_group(conn: Any, principal: Principal, group: str) -> None:
    """Raise NotFound/Forbidden unless ``principal`` may receive ``group``'s events."""
    access: Access = effective_role(conn, principal)
    kind, _, ref = group.partition(":")
    if group == AGENTS_GROUP:
        if access.global_role is None and not access.project_roles:
            raise Forbidden(f"agent updates need a role; {principal.actor} has none")
        return
    if kind == "project" and ref:
        project_id = project_store.get_project(conn, _uuid(ref, "project")).id
    elif kind == "task" and ref:
        project_id = task_store.get_task(conn, _uuid(ref, "task")).project_id
    else:
        raise NotFound(f"no real-time group {group!r}; use project:{{id}}, task:{{id}} "
                       "or agents", field="group")
    require(access, project_id, "reader", f"watching {kind} {ref}")


@bp.route(route="negotiate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def negotiate(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        access = effective_role(conn, principal)
    if access.global_role is None and not access.project_roles:
        raise Forbidden(f"real-time updates need a role somewhere; {principal.actor} has "
                        "none", actor=principal.actor)
    info = realtime().negotiate(principal.id, ttl=TOKEN_TTL_SECONDS)
    return json_response(dict(info), headers={"Cache-Control": "no-store"})


@bp.route(route="realtime/groups/{group}", methods=["POST", "DELETE"],
          auth_level=func.AuthLevel.ANONYMOUS)
@api
def realtime_group(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    group = req.route_params.get("group", "")
    body = json_body(req, GroupBody)
    if req.method == "DELETE":
        realtime().remove_from_group(group, body.connection_id)
        return func.HttpResponse(status_code=204)
    with services().db.transaction() as conn:
        authorize_group(conn, principal, group)
    realtime().add_to_group(group, body.connection_id)
    return json_response({"group": group, "connectionId": body.connection_id})
