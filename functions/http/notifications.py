"""Notification rules per project, and what was delivered for a task.

``GET|POST /api/projects/{project}/notification-rules`` (reader lists, admin creates),
``GET|PUT|DELETE /api/projects/{project}/notification-rules/{rule}`` (PUT without
``webhookUrl`` keeps the stored one), ``POST .../notification-rules/{rule}/test`` (admin:
one test message through the rule's channel, answered with the outcome),
``GET /api/tasks/{id}/notifications``. Webhook URLs are secrets: accepted, never shown.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import azure.functions as func

from functions.http._common import access_of, api, caller, json_body, readable_project
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.auth import require
from shared.errors import NotFound
from shared.notify import deliveries_of_task, rules, send_test
from shared.services import services
from shared.store import notification_rules as rule_store
from shared.store import projects as store
from shared.store import tasks as task_store

bp = func.Blueprint()


def _environment_ids(conn: Any, project_id: UUID, refs: list[str]) -> list[UUID]:
    ids: list[UUID] = []
    for index, ref in enumerate(refs):
        try:
            ids.append(store.get_environment(conn, project_id, ref).id)
        except NotFound:
            raise NotFound(f"environment {ref[:80]} not found in this project",
                           field=f"environments.{index}") from None
    return list(dict.fromkeys(ids))


def _slugs(conn: Any, project_id: UUID) -> dict[UUID, str]:
    return {e.id: e.slug for e in store.list_environments(conn, project_id)}


@bp.route(route="projects/{project}/notification-rules", methods=["GET", "POST"])
@api
def notification_rules(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project, access = readable_project(conn, req, principal)
        if req.method == "GET":
            slugs = _slugs(conn, project.id)
            page = page_request(req, str)
            return json_response(page_json(
                rule_store.list_rules(conn, project.id, after=page.after, limit=page.fetch),
                page, rule_store.rule_key, lambda r: rules.rule_json(r, slugs)))
        require(access, project.id, "admin", "changing notification rules")
        body = json_body(req, rules.RuleInput)
        ids = _environment_ids(conn, project.id, body.environments)
        rule = rule_store.create_rule(conn, project_id=project.id, body=body,
                                      environment_ids=ids, actor=principal.actor)
        view = rules.rule_json(rule, _slugs(conn, project.id))
    return json_response(view, 201, {
        "Location": f"/api/projects/{project.slug}/notification-rules/{rule.id}"})


@bp.route(route="projects/{project}/notification-rules/{rule}",
          methods=["GET", "PUT", "DELETE"])
@api
def notification_rule(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    with services().db.transaction() as conn:
        project = store.get_project(conn, req.route_params["project"])
        access = access_of(conn, principal)
        require(access, project.id, "reader" if req.method == "GET" else "admin",
                "reading this project" if req.method == "GET"
                else "changing notification rules")
        rule = rule_store.get_rule(conn, project.id, req.route_params["rule"])
        if req.method == "GET":
            return json_response(rules.rule_json(rule, _slugs(conn, project.id)))
        if req.method == "PUT":
            body = json_body(req, rules.RuleInput)
            ids = _environment_ids(conn, project.id, body.environments)
            rule = rule_store.update_rule(conn, rule, body=body, environment_ids=ids,
                                          actor=principal.actor)
            return json_response(rules.rule_json(rule, _slugs(conn, project.id)))
        rule_store.delete_rule(conn, rule, actor=principal.actor)
    return func.HttpResponse(status_code=204)


@bp.route(route="projects/{project}/notification-rules/{rule}/test", methods=["POST"])
@api
def send_test_notification(req: func.HttpRequest) -> func.HttpResponse:
    """Send a test message through one rule's channel (the send runs outside the
    transaction: a channel may take seconds)."""
    principal = caller(req)
    svc = services()
    with svc.db.transaction() as conn:
        project, access = readable_project(conn, req, principal)
        require(access, project.id, "admin", "sending a test notification")
        rule = rule_store.get_rule(conn, project.id, req.route_params["rule"])
    return json_response(send_test(svc, rule, project=project.name, actor=principal.actor))


@bp.route(route="tasks/{id}/notifications", methods=["GET"])
@api
def task_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Deliveries of the task's events: status, attempts, last error (no secrets)."""
    principal = caller(req)
    svc = services()
    with svc.db.transaction() as conn:
        task = task_store.get_task(conn, req.route_params["id"])
        if not access_of(conn, principal).allows(task.project_id, "reader"):
            raise NotFound(f"task {req.route_params['id']} not found", field="task")
    return json_response({"taskId": str(task.id), "items": deliveries_of_task(svc, task.id)})
