"""Projects, their environments and their script catalogues."""

from __future__ import annotations

import azure.functions as func

from functions.http._common import (
    access_of,
    api,
    caller,
    json_body,
    readable_environment,
    readable_project,
)
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.api.views import environment_json, project_json
from shared.auth import require
from shared.grants.resources import authorize_environment
from shared.services import services
from shared.store import projects as store
from shared.store import roles as role_store
from shared.store import scripts as script_store
from shared.tasks import approvals, scripts
from shared.tasks.requests import (
    EnvironmentCreate,
    EnvironmentUpdate,
    ProjectCreate,
    ProjectUpdate,
    dump,
)

bp = func.Blueprint()


@bp.route(route="projects", methods=["GET"])
@api
def list_projects(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    page = page_request(req, str)
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        projects = store.list_projects(conn, only_ids=access.readable_projects,
                                       after=page.after, limit=page.fetch)
    return json_response(page_json(projects, page, store.project_key,
                                   lambda p: project_json(p, access.role_on(p.id))))


@bp.route(route="projects", methods=["POST"])
@api
def create_project(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        access = access_of(conn, principal)
        require(access, None, "operator", "creating a project")
        body = json_body(req, ProjectCreate)
        project = store.create_project(conn, slug=body.slug, name=body.name,
                                       description=body.description, actor=principal.actor)
        # The creator administers what they created.
        role_store.assign_role(conn, project_id=project.id, principal_type=principal.kind,
                               principal_id=principal.id, role="admin", actor=principal.actor)
    return json_response(project_json(project, "admin"), 201,
                         {"Location": f"/api/projects/{project.slug}"})


@bp.route(route="projects/{project}", methods=["GET", "PATCH", "DELETE"])
@api
def project_item(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project, access = readable_project(conn, req, principal)
        if req.method == "GET":
            return json_response(project_json(project, access.role_on(project.id)))
        require(access, project.id, "admin", "changing this project")
        if req.method == "DELETE":
            store.delete_project(conn, project.id, actor=principal.actor)
            return func.HttpResponse(status_code=204)
        body = json_body(req, ProjectUpdate)
        project = store.update_project(conn, project.id, body.model_dump(exclude_none=True),
                                       actor=principal.actor)
        return json_response(project_json(project, access.role_on(project.id)))


@bp.route(route="projects/{project}/environments", methods=["GET", "POST"])
@api
def environments(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project, access = readable_project(conn, req, principal)
        if req.method == "GET":
            page = page_request(req, bool, str)
            return json_response(page_json(
                store.list_environments(conn, project.id, after=page.after, limit=page.fetch),
                page, store.environment_key, environment_json))
        require(access, project.id, "admin", "creating an environment")
        body = json_body(req, EnvironmentCreate)
        data = dump(body)
        authorize_environment(conn, access, project.id, target=data["target"],
                              database=data.get("database") or {}, actor=principal.actor,
                              environment=body.slug)
        env = store.create_environment(
            conn, project_id=project.id, slug=body.slug, name=body.name,
            target=data["target"], database=data.get("database"), url=body.url,
            actor=principal.actor)
    return json_response(environment_json(env), 201, {
        "Location": f"/api/projects/{project.slug}/environments/{env.slug}"})


@bp.route(route="projects/{project}/environments/{env}", methods=["GET", "PATCH", "DELETE"])
@api
def environment_item(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project, env, access = readable_environment(conn, req, principal)
        if req.method == "GET":
            # the approval rule travels with the environment: a page states it without a
            # second request that answers 404 for every unprotected environment
            return json_response({**environment_json(env),
                                  "protection": approvals.protection_json(conn, env.id)})
        require(access, project.id, "admin", "changing an environment")
        if req.method == "DELETE":
            store.delete_environment(conn, env, actor=principal.actor)
            return func.HttpResponse(status_code=204)
        body = json_body(req, EnvironmentUpdate)
        changes = dump(body)
        authorize_environment(conn, access, project.id,
                              target=changes.get("target", env.target),
                              database=changes.get("database", env.database),
                              actor=principal.actor, environment=env.slug)
        env = store.update_environment(conn, env, changes, actor=principal.actor)
        return json_response(environment_json(env))


@bp.route(route="projects/{project}/scripts", methods=["GET", "POST"])
@api
def project_scripts(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project, access = readable_project(conn, req, principal)
        if req.method == "GET":
            page = page_request(req, str)
            return json_response(page_json(
                script_store.list_scripts(conn, project.id, after=page.after, limit=page.fetch),
                page, script_store.script_key,
                lambda s: s.model_dump(mode="json", by_alias=True)))
        require(access, project.id, "admin", "changing the script catalogue")
        body = json_body(req, scripts.ScriptDefinition)
        script = script_store.create_script(conn, project.id, body, actor=principal.actor)
    return json_response(script.model_dump(mode="json", by_alias=True), 201)


@bp.route(route="projects/{project}/scripts/{script}", methods=["PUT", "DELETE"])
@api
def script_item(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project = store.get_project(conn, req.route_params["project"])
        require(access_of(conn, principal), project.id, "admin", "changing the script catalogue")
        if req.method == "DELETE":
            script_store.delete_script(conn, project.id, req.route_params["script"],
                                       actor=principal.actor)
            return func.HttpResponse(status_code=204)
        body = json_body(req, scripts.ScriptDefinition)
        script = script_store.update_script(conn, project.id, req.route_params["script"], body,
                                            actor=principal.actor)
    return json_response(script.model_dump(mode="json", by_alias=True))
