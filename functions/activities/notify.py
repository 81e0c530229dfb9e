"""Activities that deliver notifications. They raise while a delivery is still worth
retrying, so the orchestrator's retry policy (with backoff) drives the attempts; the
attempt that exhausts them records the failure instead of raising."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import azure.durable_functions as df

from functions.payloads import Delivery
from shared.domain.models import Environment, Project, Task
from shared.notify import Event, approval_requested_event, deliver, event_for_task
from shared.services import Services, services
from shared.store import projects as project_store
from shared.store import tasks as task_store

bp = df.Blueprint()


class DeliveryPending(Exception):
    """Some channel has not taken the notification yet; Durable retries the activity."""


@bp.activity_trigger(input_name="payload")
def notify_task_event(payload: dict[str, Any]) -> dict[str, Any]:
    """Deliver the terminal event of ``taskId`` to every matching rule (once each)."""
    svc, asked = services(), Delivery.from_json(payload)
    task, project, env = _task_and_place(svc, asked)
    event = event_for_task(task, project, env, svc.settings.public_url)
    if event is None:
        return {"skipped": f"task is {task.status}"}
    return _deliver(svc, event, asked)


@bp.activity_trigger(input_name="payload")
def notify_approval_requested(payload: dict[str, Any]) -> dict[str, Any]:
    """Deliver ``approval.requested`` for ``taskId`` (call with retry options, like
    ``notify_task_event``: it raises while a delivery is worth retrying)."""
    svc, asked = services(), Delivery.from_json(payload)
    task, project, env = _task_and_place(svc, asked)
    approvers = ", ".join(f"{a.get('type', 'user')} {a.get('id', '?')}" for a in
                          (task.approval or {}).get("approvers", [])) or None
    event = approval_requested_event(task, project, env, svc.settings.public_url, approvers)
    return _deliver(svc, event, asked)


def _task_and_place(svc: Services, asked: Delivery) -> tuple[Task, Project, Environment]:
    with svc.db.transaction() as conn:
        task = task_store.get_task(conn, UUID(asked.task_id))
        env = project_store.get_environment_by_id(conn, task.environment_id)
        project = project_store.get_project(conn, task.project_id)
    return task, project, env


def _deliver(svc: Services, event: Event, asked: Delivery) -> dict[str, Any]:
    """One attempt per channel; raises (for Durable to retry) while one is worth retrying."""
    report = deliver(svc, event, max_attempts=asked.max_attempts or svc.settings.notify_attempts)
    if report.pending:
        raise DeliveryPending("; ".join(report.errors) or "a delivery is in flight")
    return report.as_json()
