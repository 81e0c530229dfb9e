"""Activities that create and tear down environments (sandboxes) and record their URLs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import azure.durable_functions as df

from functions.payloads import CreateSandbox, RecordUrl, SandboxCreated, UrlRecorded
from shared.api.views import iso
from shared.grants import sandboxes
from shared.services import services
from shared.store import backups as backup_store
from shared.store import projects as project_store
from shared.store import resources as resource_store
from shared.store import tasks as task_store

bp = df.Blueprint()
URL = re.compile(r"^https?://\S{1,2000}$")


@bp.activity_trigger(input_name="payload")
def create_sandbox_environment(payload: dict[str, Any]) -> dict[str, Any]:
    """Record the sandbox (kind sandbox, parent, expiry) — once, even if retried — and
    name the backup to seed it from: ``seedBackupId`` (a fresh backup the orchestration
    took, or the one the request chose), else the parent's latest backup."""
    svc = services()
    asked = CreateSandbox.from_json(payload)
    with svc.db.transaction() as conn:
        task = task_store.get_task(conn, asked.task_id)
        parent = project_store.get_environment_by_id(conn, task.environment_id)
        project = project_store.get_project(conn, task.project_id)
        name = task.parameters["name"]
        existing = [e for e in project_store.list_environments(conn, task.project_id)
                    if e.slug == name and e.parent_id == parent.id]
        if existing:
            sandbox = existing[0]
        else:
            database = dict(parent.database)
            if database.get("connection"):  # its own database on the parent's server
                database["databaseName"] = sandboxes.database_name(
                    project.slug, project.id, parent.id, name)
            # its own namespace on the parent's cluster, granted to the project with it
            target = sandboxes.sandbox_target(parent.target, project.id, parent.id, name)
            if target.get("namespace") != parent.target.get("namespace"):
                cluster = resource_store.register(conn, kind="cluster", name=target["cluster"],
                                          actor=task.requested_by)
                resource_store.grant(conn, cluster, project_id=project.id,
                             namespaces=[target["namespace"]], actor=task.requested_by,
                             via=f"sandbox {name}")
            sandbox = project_store.create_environment(
                conn, project_id=task.project_id, slug=name, name=f"Sandbox {name}",
                kind="sandbox", parent_id=parent.id, target=target, database=database,
                expires_at=svc.clock.now() + timedelta(hours=int(task.parameters["ttlHours"])),
                # Never the parent's URL: that would send people to the parent's app.
                url=None, actor=task.requested_by)
        seed = asked.seed_backup_id
        if seed is None:
            latest = backup_store.latest_backup(conn, parent.id)
            seed = str(latest.id) if latest else None
        version = task_store.last_deployed_version(conn, parent.id)
    return SandboxCreated(environment_id=str(sandbox.id), environment=sandbox.slug,
                          expires_at=iso(sandbox.expires_at), url=sandbox.url,
                          seed_backup_id=seed, parent_version=version).to_json()


@bp.activity_trigger(input_name="payload")
def record_environment_url(payload: dict[str, Any]) -> dict[str, Any]:
    """Record the URL a deploy reported for the task's environment, or for the sandbox the
    task created (audited, idempotent).

    A URL that is not http(s) is refused here rather than stored: the UI links to it.
    """
    asked = RecordUrl.from_json(payload)
    url = str(asked.url or "")
    if not URL.match(url):
        return UrlRecorded(recorded=False, reason=f"the reported url {url[:100]!r} is not an "
                           "http(s) URL; the environment's URL is unchanged").to_json()
    svc = services()
    with svc.db.transaction() as conn:
        task = task_store.get_task(conn, asked.task_id)
        env = project_store.get_environment_by_id(
            conn, UUID(asked.environment_id) if asked.environment_id else task.environment_id)
        if env.id != task.environment_id and env.parent_id != task.environment_id:
            return UrlRecorded(recorded=False, reason="a task records URLs only for its own "
                               "environment or its sandboxes").to_json()
        if env.url != url:
            project_store.update_environment(conn, env, {"url": url}, actor=task.requested_by)
    return UrlRecorded(recorded=True, url=url).to_json()
