"""Backup schedules per environment, and extending a sandbox's lifetime.

``GET|POST /api/projects/{p}/environments/{e}/backup-schedules`` (reader lists, admin
creates), ``GET|PUT|DELETE .../backup-schedules/{id}`` (admin edits: a slot of the new
expression that already passed counts as fired, so an edit starts no backup at once), and
``POST /api/projects/{p}/environments/{e}/extend {"hours": n}`` (operator).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import azure.functions as func

from functions.http._common import api, caller, json_body, of_environment, readable_environment
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.api.views import environment_json, iso
from shared.auth import Principal, require
from shared.domain.models import BackupSchedule, Environment, Project
from shared.errors import BadRequest
from shared.schedules.cron import Cron, CronError, next_slot, next_slots, zone
from shared.schedules.due import fired_mark_after_edit
from shared.schedules.inputs import ExtendInput, ScheduleInput, ScheduleUpdate
from shared.schedules.sandboxes import extend
from shared.services import services
from shared.store import activity
from shared.store import backups as backup_store

bp = func.Blueprint()
ENV_ROUTE = "projects/{project}/environments/{env}"
MIN_INTERVAL = timedelta(minutes=15)  # a backup per slot: more often is a mistake
UPCOMING = 5  # next runs listed with each schedule


def _check_frequency(body: ScheduleInput, now: datetime) -> None:
    cron, tz = Cron.parse(body.cron), zone(body.time_zone)
    first = next_slot(cron, tz, now)
    if first is None:
        raise BadRequest("cron never fires (no matching date within years)", field="cron")
    second = next_slot(cron, tz, first)
    if second is not None and second - first < MIN_INTERVAL:
        raise BadRequest(f"cron fires more often than every {MIN_INTERVAL} "
                         "(each slot takes a full backup)", field="cron")


def schedule_json(schedule: BackupSchedule, now: datetime) -> dict[str, Any]:
    try:
        upcoming = next_slots(Cron.parse(schedule.cron), zone(schedule.timezone), now,
                              UPCOMING) if schedule.enabled else []
    except CronError:
        upcoming = []
    return {"id": str(schedule.id), "environmentId": str(schedule.environment_id),
            "cron": schedule.cron, "timeZone": schedule.timezone,
            "retainCount": schedule.retain_count, "retainDays": schedule.retain_days,
            "enabled": schedule.enabled, "createdBy": schedule.created_by,
            "createdAt": iso(schedule.created_at), "lastSlotAt": iso(schedule.last_slot_at),
            "nextSlotAt": iso(upcoming[0]) if upcoming else None,
            "nextSlots": [iso(slot) for slot in upcoming]}


def _environment(conn: Any, req: func.HttpRequest, principal: Principal,
                 need: str) -> tuple[Project, Environment]:
    project, env, access = readable_environment(conn, req, principal)
    require(access, project.id, need, "changing backup schedules" if need == "admin"
            else "extending a sandbox")
    return project, env


@bp.route(route=f"{ENV_ROUTE}/backup-schedules", methods=["GET", "POST"])
@api
def backup_schedules(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    svc = services()
    now = svc.clock.now()
    with svc.db.transaction() as conn:
        project, env = _environment(conn, req, principal,
                                    "reader" if req.method == "GET" else "admin")
        if req.method == "GET":
            page = page_request(req, datetime, UUID)
            return json_response(page_json(
                backup_store.list_schedules(conn, environment_id=env.id, after=page.after,
                                            limit=page.fetch),
                page, backup_store.schedule_key, lambda s: schedule_json(s, now)))
        body = json_body(req, ScheduleInput)
        _check_frequency(body, now)
        schedule = backup_store.create_schedule(
            conn, environment_id=env.id, cron=body.cron, timezone=body.time_zone,
            retain_count=body.retain_count, retain_days=body.retain_days,
            actor=principal.actor, created_at=now)
        activity.record(conn, actor=principal.actor, action="schedule.created",
                        project_id=project.id, environment_id=env.id,
                        details={"schedule": str(schedule.id), "cron": schedule.cron,
                                 "timezone": schedule.timezone,
                                 "retainCount": schedule.retain_count,
                                 "retainDays": schedule.retain_days})
    return json_response(schedule_json(schedule, now), 201, {
        "Location": f"/api/{ENV_ROUTE.format(project=project.slug, env=env.slug)}"
                    f"/backup-schedules/{schedule.id}"})


@bp.route(route=f"{ENV_ROUTE}/backup-schedules/{{schedule}}",
          methods=["GET", "PUT", "DELETE"])
@api
def backup_schedule(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    svc = services()
    with svc.db.transaction() as conn:
        project, env = _environment(conn, req, principal,
                                    "reader" if req.method == "GET" else "admin")
        schedule = of_environment(env, req.route_params["schedule"],
                                  lambda i: backup_store.get_schedule(conn, i), "schedule")
        if req.method == "GET":
            return json_response(schedule_json(schedule, svc.clock.now()))
        if req.method == "PUT":
            return json_response(_update(conn, project, env, schedule, req, principal))
        backup_store.delete_schedule(conn, schedule.id)
        activity.record(conn, actor=principal.actor, action="schedule.deleted",
                        project_id=project.id, environment_id=env.id,
                        details={"schedule": str(schedule.id), "cron": schedule.cron})
    return func.HttpResponse(status_code=204)


def _update(conn: Any, project: Project, env: Environment, schedule: BackupSchedule,
            req: func.HttpRequest, principal: Principal) -> dict[str, Any]:
    now = services().clock.now()
    body = json_body(req, ScheduleUpdate)
    _check_frequency(body, now)
    changed = backup_store.update_schedule(
        conn, schedule.id, cron=body.cron, timezone=body.time_zone,
        retain_count=body.retain_count, retain_days=body.retain_days, enabled=body.enabled,
        last_slot_at=fired_mark_after_edit(schedule, body.cron, body.time_zone, now))
    activity.record(conn, actor=principal.actor, action="schedule.updated",
                    project_id=project.id, environment_id=env.id,
                    details={"schedule": str(schedule.id), "cron": changed.cron,
                             "timezone": changed.timezone, "enabled": changed.enabled,
                             "retainCount": changed.retain_count,
                             "retainDays": changed.retain_days})
    return schedule_json(changed, now)


@bp.route(route=f"{ENV_ROUTE}/extend", methods=["POST"])
@api
def extend_sandbox(req: func.HttpRequest) -> func.HttpResponse:
    """Push a sandbox's expiry later; its total lifetime stays within the maximum."""
    principal, svc = caller(req), services()
    with svc.db.transaction() as conn:
        _, env = _environment(conn, req, principal, "operator")
        body = json_body(req, ExtendInput)
        env = extend(conn, env, body.hours, actor=principal.actor, now=svc.clock.now(),
                     max_ttl_hours=svc.settings.sandbox_max_ttl_hours)
    return json_response(environment_json(env))
