"""Backups you can manage: details, a short-lived download URL, deletion.

``GET .../backups/{backup}`` (reader: size, duration, sha256, tool versions, whether its
artifact is still stored), ``POST .../backups/{backup}/download`` (operator: a signed URL
valid for minutes, audited), ``DELETE .../backups/{backup}`` (admin: artifact then row,
audited; refused while an open task uses the backup).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.functions as func

from functions.http._common import api, caller, of_environment, readable_environment
from functions.http._responses import json_response
from shared.api.views import backup_json, iso
from shared.auth import Principal, require
from shared.domain.models import Backup, Environment, Project
from shared.errors import Conflict
from shared.services import services
from shared.store import activity
from shared.store import backups as backup_store
from shared.store import tasks as task_store

bp = func.Blueprint()
ROUTE = "projects/{project}/environments/{env}/backups/{backup}"
DOWNLOAD_TTL = timedelta(minutes=15)
_WHAT = {"reader": "reading backups", "operator": "downloading backups",
         "admin": "deleting backups"}


def _backup(conn: Any, req: func.HttpRequest, principal: Principal,
            need: str) -> tuple[Project, Environment, Backup]:
    project, env, access = readable_environment(conn, req, principal)
    require(access, project.id, need, _WHAT[need])
    backup = of_environment(env, req.route_params["backup"],
                            lambda i: backup_store.get_backup(conn, i), "backup", say_where=True)
    return project, env, backup


def _stored(backup: Backup) -> bool:
    artifacts = services().artifacts
    return artifacts.exists(artifacts.name_of(backup.location))


@bp.route(route=ROUTE, methods=["GET", "DELETE"])
@api
def backup_item(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    svc = services()
    need = "reader" if req.method == "GET" else "admin"
    with svc.db.transaction() as conn:
        project, env, backup = _backup(conn, req, principal, need)
        if req.method == "GET":
            return json_response({**backup_json(backup), "artifactStored": _stored(backup)})
        using = task_store.open_task_using_backup(conn, backup.id)
        if using is not None:
            raise Conflict(f"backup {backup.id} is in use by {using['operation']} task "
                           f"{using['id']}; delete it once that task has ended",
                           field="backup")
    # the artifact first: a row without its artifact would offer a broken restore
    svc.artifacts.delete(svc.artifacts.name_of(backup.location))
    with svc.db.transaction() as conn:
        backup_store.delete_backup(conn, backup.id)
        activity.record(conn, actor=principal.actor, action="backup.deleted",
                        project_id=project.id, environment_id=env.id,
                        task_id=backup.task_id,
                        details={"backup": str(backup.id), "kind": backup.kind,
                                 "createdAt": iso(backup.created_at),
                                 "sizeBytes": backup.size_bytes, "sha256": backup.sha256})
    return func.HttpResponse(status_code=204)


@bp.route(route=f"{ROUTE}/download", methods=["POST"])
@api
def backup_download(req: func.HttpRequest) -> func.HttpResponse:
    """A signed URL that answers GET with the dump for a few minutes (audited)."""
    principal = caller(req)
    svc = services()
    with svc.db.transaction() as conn:
        project, env, backup = _backup(conn, req, principal, "operator")
        if not _stored(backup):
            raise Conflict(f"backup {backup.id} has no artifact any more: it was deleted or "
                           "expired from storage", field="backup")
        name = svc.artifacts.name_of(backup.location)
        url = svc.artifacts.download_url(name, DOWNLOAD_TTL)
        expires = svc.clock.now() + DOWNLOAD_TTL
        activity.record(conn, actor=principal.actor, action="backup.download_issued",
                        project_id=project.id, environment_id=env.id,
                        task_id=backup.task_id,
                        details={"backup": str(backup.id), "expiresAt": iso(expires)})
    return json_response({"url": url, "expiresAt": iso(expires), "sha256": backup.sha256,
                          "sizeBytes": backup.size_bytes,
                          "fileName": f"{env.slug}-{backup.id}.dump"})
