"""Service Bus → Durable: start each task's orchestration, and sweep tasks nobody took.

The queue is session-enabled (SessionId = environment id) so an environment's requests
arrive in order; the instance id is the task id, so a redelivered message (or a sweeper
re-send) never starts a second orchestration.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from uuid import UUID

import azure.durable_functions as df
import azure.functions as func

from functions.wake import wake
from shared.domain.task_states import TaskStatus
from shared.services import services
from shared.store import tasks as task_store
from shared.tasks.service import TaskService

bp = df.Blueprint()
log = logging.getLogger("cloudops.queue")

ORCHESTRATORS = {
    "deploy": "deploy_orchestrator",
    "backup": "backup_orchestrator",
    "restore": "restore_orchestrator",
    "refresh": "refresh_orchestrator",
    "restart": "restart_orchestrator",
    "sandbox_create": "sandbox_create_orchestrator",
    "sandbox_delete": "sandbox_delete_orchestrator",
    "script_run": "script_run_orchestrator",
}


def _task_is_open(task_id: str) -> bool:
    with services().db.statements() as conn:  # one read: no BEGIN/COMMIT
        return not TaskStatus(task_store.get_task(conn, task_id).status).terminal


async def _already_started(client: df.DurableOrchestrationClient, task_id: str) -> bool:
    status = await client.get_status(task_id)
    return status is not None and status.runtime_status is not None


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%CLOUDOPS_TASK_QUEUE%",
                              connection="ServiceBusConnection", is_sessions_enabled=True)
@bp.durable_client_input(client_name="client")
async def start_task_orchestration(msg: func.ServiceBusMessage,
                                   client: df.DurableOrchestrationClient) -> None:
    body: dict[str, Any] = json.loads(msg.get_body())
    task_id, operation = body["taskId"], body["operation"]
    orchestrator = ORCHESTRATORS.get(operation)
    if orchestrator is None:
        # Poison: dead-lettering would leave the task stuck, so end it with the reason.
        await asyncio.to_thread(TaskService(services()).finish, task_id, TaskStatus.FAILED,
                                reason="unknown operation", error=f"no orchestrator for "
                                f"operation {operation!r}", actor="system")
        return
    if not await asyncio.to_thread(_task_is_open, task_id):
        return  # cancelled (or swept) before it was picked up
    try:
        await client.start_new(orchestrator, instance_id=task_id, client_input=body)
    except Exception:
        if await _already_started(client, task_id):
            return  # a redelivery or sweeper re-send: the orchestration exists already
        raise  # abandon: Service Bus redelivers, then dead-letters after maxDeliveryCount


@bp.timer_trigger(schedule="*/15 * * * * *", arg_name="timer",
                  run_on_startup=True)
@bp.durable_client_input(client_name="client")
async def sweep_tasks(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Nothing silently stuck: re-send queued tasks whose message was lost (e.g. with the
    local host's in-memory queue in a restart), fail those that never start, and end
    tasks whose orchestration died without finishing them."""
    svc = TaskService(services())
    counts, woken = await asyncio.to_thread(svc.sweep_unqueued)
    for instance in woken:
        await wake(client, str(instance), "environment_granted")
    orphans = await asyncio.to_thread(_open_started_tasks)
    for task_id in orphans:
        status = await client.get_status(task_id)
        runtime = getattr(status, "runtime_status", None)
        if runtime is not None and runtime.name in ("Failed", "Terminated", "Completed"):
            done = await asyncio.to_thread(
                svc.finish, UUID(task_id), TaskStatus.FAILED, reason="orchestration ended",
                error=f"the orchestration ended ({runtime.name}) without finishing the task: "
                      f"{getattr(status, 'output', None) or 'no output'}", actor="sweeper")
            if done.granted is not None:
                await wake(client, str(done.granted), "environment_granted")
    if counts["resent"] or counts["failed"]:
        log.info("sweeper: %s", counts)


def _open_started_tasks() -> list[str]:
    """Open tasks past the queue that have not changed for a while."""
    with services().db.transaction() as conn:
        return task_store.stale_started_task_ids(conn, unchanged_for_seconds=60, limit=200)
