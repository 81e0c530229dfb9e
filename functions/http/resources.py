"""Execution resources and their grants to projects (global admins register and grant;
any role may read names and grants — they hold no secrets)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import azure.durable_functions as df
import azure.functions as func

from functions.http._common import access_of, api, caller, json_body
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.agents.effects import deliver_job_events
from shared.auth import Access, require
from shared.domain.models import Job
from shared.errors import ConstraintViolation, Forbidden
from shared.grants import resources as grants
from shared.services import services
from shared.store import projects as project_store
from shared.store import resources as resource_store

bp = df.Blueprint()


def _any_role(access: Access) -> None:
    if access.global_role is None and not access.project_roles:
        raise Forbidden(f"reading resources needs a role; {access.principal.actor} has none",
                        actor=access.principal.actor)


@bp.route(route="resources", methods=["GET", "POST"])
@api
def resources(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        if req.method == "GET":
            _any_role(access)
            kind = req.params.get("kind")
            if kind is not None and kind not in grants.KINDS:
                raise ConstraintViolation(f"kind must be one of {', '.join(grants.KINDS)}",
                                          field="kind")
            page = page_request(req, str, str)
            return json_response(page_json(
                resource_store.list_resources(conn, kind, after=page.after, limit=page.fetch), page,
                resource_store.resource_key,
                lambda r: grants.resource_json(r, resource_store.grants_of(conn, r["id"]))))
        require(access, None, "admin", "registering a resource")
        body = json_body(req, grants.ResourceCreate)
        name, metadata = body.key()
        existing = resource_store.is_registered(conn, body.kind, name)
        row = resource_store.register(conn, kind=body.kind, name=name, metadata=metadata,
                              description=body.description, actor=principal.actor)
    return json_response(grants.resource_json(row, []), 200 if existing else 201,
                         {"Location": f"/api/resources/{row['id']}"})


@bp.route(route="resources/{resource}", methods=["GET", "DELETE"])
@bp.durable_client_input(client_name="client")
@api
async def resource_item(req: func.HttpRequest,
                        client: df.DurableOrchestrationClient) -> func.HttpResponse:
    principal = caller(req)
    svc = services()

    def run() -> tuple[dict[str, Any] | None, list[Job]]:
        with svc.db.transaction() as conn:
            access = access_of(conn, principal)
            if req.method == "GET":
                _any_role(access)
                resource = resource_store.get_resource(conn, req.route_params["resource"])
                return grants.resource_json(resource, resource_store.grants_of(conn,
                                                                       resource["id"])), []
            require(access, None, "admin", "deleting a resource")
            resource = resource_store.get_resource(conn, req.route_params["resource"])
            if resource["kind"] == "pool":
                raise ConstraintViolation("an agent pool's registration goes with the pool;"
                                          " withdraw its grants instead", field="resource")
            resource_store.delete_resource(conn, resource, actor=principal.actor)
            return None, grants.fail_ungranted_jobs(conn, svc.clock.now())

    shown, failed = await asyncio.to_thread(run)
    await deliver_job_events(svc, client, failed)
    return json_response(shown) if shown is not None else func.HttpResponse(status_code=204)


@bp.route(route="resources/{resource}/grants", methods=["GET", "POST"])
@api
def resource_grants(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        if req.method == "GET":
            _any_role(access)
            resource = resource_store.get_resource(conn, req.route_params["resource"])
            page = page_request(req, str, UUID)
            return json_response(page_json(
                resource_store.grants_of(conn, resource["id"], after=page.after, limit=page.fetch),
                page, resource_store.grant_key, grants.grant_json))
        require(access, None, "admin", "granting a resource")
        resource = resource_store.get_resource(conn, req.route_params["resource"])
        body = json_body(req, grants.GrantCreate)
        project = None if body.project == "*" else project_store.get_project(conn,
                                                                            body.project)
        row = resource_store.grant(conn, resource, project_id=project.id if project else None,
                           namespaces=body.namespaces, actor=principal.actor)
        row["project_slug"] = project.slug if project else None
    return json_response(grants.grant_json(row), 201)


@bp.route(route="resources/{resource}/grants/{grant}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
@api
async def withdraw_grant(req: func.HttpRequest,
                         client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Withdraw a grant; tasks whose jobs still wait for an agent fail with the reason."""
    principal = caller(req)
    svc = services()

    def run() -> list[Job]:
        with svc.db.transaction() as conn:
            require(access_of(conn, principal), None, "admin", "withdrawing a grant")
            resource = resource_store.get_resource(conn, req.route_params["resource"])
            return grants.withdraw(conn, resource, req.route_params["grant"],
                                   actor=principal.actor, now=svc.clock.now())

    failed = await asyncio.to_thread(run)
    await deliver_job_events(svc, client, failed)
    return func.HttpResponse(status_code=204)
