"""Activities for upkeep: backup retention after a good backup, sandbox teardown."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import azure.durable_functions as df

from functions.payloads import Pruned, Retention, SandboxDeleted, SandboxRef
from shared.domain.task_states import TaskStatus
from shared.services import services
from shared.store import activity
from shared.store import backups as backup_store
from shared.store import projects as project_store
from shared.store import resources as resource_store
from shared.store import tasks as task_store
from shared.tasks.service import TaskService

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def apply_backup_retention(payload: dict[str, Any]) -> dict[str, Any]:
    """Prune the environment's backups its schedules no longer keep (after ``backupId``
    was recorded, so only ever behind a newer good backup)."""
    from shared.schedules.retention import apply_retention, forget_expired

    asked = Retention.from_json(payload)
    pruned = apply_retention(services(), UUID(asked.environment_id), UUID(asked.backup_id))
    # rows whose artifact the storage lifecycle rule (or a person) removed go too
    expired = forget_expired(services(), UUID(asked.environment_id))
    return Pruned(pruned=[str(b) for b in pruned], expired=[str(b) for b in expired]).to_json()


@bp.activity_trigger(input_name="payload")
def delete_sandbox_environment(payload: dict[str, Any]) -> dict[str, Any]:
    """Remove the sandbox's record; idempotent (a retry after success finds it gone).

    The sandbox's task history (this teardown task included) moves to the parent
    environment first, because tasks are deleted with their environment; tasks still
    queued behind the teardown end cancelled. Backup artifacts of the sandbox are deleted
    with their rows."""
    svc = services()
    asked = SandboxRef.from_json(payload)
    sandbox_id, task_id = UUID(asked.sandbox_id), UUID(asked.task_id)
    tasks = TaskService(svc)
    with svc.db.transaction() as conn:
        found = project_store.find_environment(conn, sandbox_id)
        if found is None:
            return SandboxDeleted(deleted=False, reason="already gone").to_json()
        sandbox = found
        if sandbox.kind != "sandbox" or sandbox.parent_id is None:
            raise ValueError(f"{sandbox.slug} is not a sandbox")
        behind = [t for t in task_store.open_tasks_for_environment(conn, sandbox_id)
                  if t.id != task_id]
        backups = backup_store.list_backups(conn, sandbox_id)
    for other in behind:
        tasks.finish(other.id, TaskStatus.CANCELLED, reason="sandbox deleted",
                     error=f"the sandbox {sandbox.slug} was deleted", actor="sandbox-expiry")
    for backup in backups:
        svc.artifacts.delete(svc.artifacts.name_of(backup.location))
    task = None
    with svc.db.transaction() as conn:
        project_store.lock_environment(conn, sandbox_id)
        task_store.move_tasks(conn, sandbox_id, sandbox.parent_id)
        task = task_store.get_task(conn, task_id)
        project_store.delete_environment_row(conn, sandbox_id)
        resource_store.release_sandbox_namespace(conn, sandbox, actor=task.requested_by)
        activity.record(conn, actor=task.requested_by, action="environment.deleted",
                        project_id=sandbox.project_id, environment_id=sandbox.parent_id,
                        task_id=task_id,
                        details={"slug": sandbox.slug, "kind": "sandbox",
                                 "reason": task.parameters.get("reason") or "requested",
                                 "expiresAt": sandbox.expires_at.isoformat()
                                 if sandbox.expires_at else None,
                                 "backupsDeleted": len(backups)})
    return SandboxDeleted(deleted=True, sandbox=sandbox.slug, backups_deleted=len(backups),
                          cancelled_tasks=[str(t.id) for t in behind]).to_json()
