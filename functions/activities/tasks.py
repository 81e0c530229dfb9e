"""Activities that move a task through its lifecycle: queue, steps, logs, finish."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import azure.durable_functions as df

from shared.domain.task_states import TaskStatus
from shared.services import services
from shared.store import projects as project_store
from shared.store import tasks as task_store
from shared.tasks.service import Finished, TaskService

bp = df.Blueprint()


def task_service() -> TaskService:
    return TaskService(services())


def _plan(task_id: UUID) -> dict[str, Any]:
    """What the orchestrator needs to plan: the task's parameters and its environment."""
    with services().db.transaction() as conn:
        task = task_store.get_task(conn, task_id)
        env = project_store.get_environment_by_id(conn, task.environment_id)
        project = project_store.get_project(conn, task.project_id)
    return {"taskId": str(task.id), "operation": task.operation,
            "parameters": task.parameters, "requestedBy": task.requested_by,
            "project": project.slug, "environment": env.slug,
            "environmentId": str(env.id), "target": env.target, "database": env.database,
            "url": env.url}


@bp.activity_trigger(input_name="payload")
def acquire_environment(payload: dict[str, Any]) -> dict[str, Any]:
    """Take the environment if it is this task's turn; with it comes the task's plan."""
    svc = task_service()
    task_id = UUID(payload["taskId"])
    if svc.cancel_requested(task_id):
        return {"acquired": False, "ended": True, "reason": "cancelled"}
    decision = svc.acquire_environment(task_id)
    return {"acquired": decision.acquired, "ended": False, "reason": decision.reason,
            "position": decision.position,
            "task": _plan(task_id) if decision.acquired else None}


@bp.activity_trigger(input_name="payload")
def start_step(payload: dict[str, Any]) -> dict[str, Any]:
    """Enter a step: running, with a reason and progress; refused once cancel was asked."""
    svc = task_service()
    task_id = UUID(payload["taskId"])
    if svc.cancel_requested(task_id):
        return {"cancelled": True}
    task = svc.move(task_id, TaskStatus.RUNNING, reason=payload["reason"],
                    progress=payload.get("progress"))
    lines = payload.get("log") or []
    if lines:
        svc.log(task, lines)
    return {"cancelled": False}


@bp.activity_trigger(input_name="payload")
def append_log(payload: dict[str, Any]) -> int:
    svc = task_service()
    with services().db.transaction() as conn:
        task = task_store.get_task(conn, payload["taskId"])
    svc.log(task, payload["lines"], level=payload.get("level", "info"))
    return len(payload["lines"])


@bp.activity_trigger(input_name="payload")
@bp.durable_client_input(client_name="client")
async def finish_task(payload: dict[str, Any], client: df.DurableOrchestrationClient) -> bool:
    """End the task and hand its environment to the next task's orchestration.

    The closing log line is written first, so a reader who sees a terminal status also
    sees the whole log."""
    svc = task_service()
    status = TaskStatus(payload["status"])
    task_id = UUID(payload["taskId"])

    def close() -> Finished:
        with services().db.transaction() as conn:
            task = task_store.get_task(conn, task_id)
        if not TaskStatus(task.status).terminal and payload.get("log"):
            svc.log(task, payload["log"], "info" if status == TaskStatus.SUCCEEDED else "error")
        return svc.finish(task_id, status, reason=payload["reason"],
                          error=payload.get("error"), result=payload.get("result"))

    done = await asyncio.to_thread(close)
    if done.granted is not None:
        await client.raise_event(str(done.granted), "environment_granted", {})
    return done.task is not None
