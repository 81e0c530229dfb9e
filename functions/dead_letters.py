"""The task queue's dead-letter sub-queue: a task whose message was dead-lettered ends failed.

Service Bus moves a message that could not be processed (``MaxDeliveryCountExceeded``
after repeated failures, or an explicit dead-letter) to ``<queue>/$DeadLetterQueue``.
Left there, its task would sit ``queued`` until the sweeper gave up on it; this trigger
ends it ``failed`` at once with the broker's ``DeadLetterReason`` (and description), so the
UI shows why. The MessageId is the task id (see ``TaskService._send``); a body that still
parses may name it too. A task whose orchestration is already under way is left to it:
a late duplicate delivery that failed does not fail work that is running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from functions.wake import wake
from shared.domain.task_states import TaskStatus
from shared.errors import NotFound
from shared.services import services
from shared.store import tasks as task_store
from shared.tasks.service import TaskService

bp = df.Blueprint()
log = logging.getLogger("cloudops.deadletters")

ACTIVE_RUNTIME = ("Pending", "Running", "ContinueAsNew")


def dead_lettered_task_id(msg: func.ServiceBusMessage) -> uuid.UUID | None:
    """The task a dead-lettered message was for: its MessageId, else the body's taskId."""
    candidates: list[object] = [msg.message_id]
    try:
        body = json.loads(msg.get_body())
        if isinstance(body, dict):
            candidates.append(body.get("taskId"))
    except (ValueError, UnicodeDecodeError):
        pass  # a poison body is exactly what lands here
    for candidate in candidates:
        try:
            return uuid.UUID(str(candidate))
        except ValueError:
            continue
    return None


def _open(task_id: uuid.UUID) -> bool:
    with services().db.transaction() as conn:
        try:
            return not TaskStatus(task_store.get_task(conn, task_id).status).terminal
        except NotFound:
            return False


@bp.service_bus_queue_trigger(arg_name="msg",
                              queue_name="%CLOUDOPS_TASK_QUEUE%/$DeadLetterQueue",
                              connection="ServiceBusConnection")
@bp.durable_client_input(client_name="client")
async def fail_dead_lettered_task(msg: func.ServiceBusMessage,
                                  client: df.DurableOrchestrationClient) -> None:
    reason = msg.dead_letter_reason or "dead-lettered"
    task_id = dead_lettered_task_id(msg)
    if task_id is None or not await asyncio.to_thread(_open, task_id):
        log.warning("dead-lettered message %s (%s) names no open task; dropped",
                    msg.message_id, reason)
        return
    status = await client.get_status(str(task_id))
    runtime = getattr(getattr(status, "runtime_status", None), "name", None)
    if runtime in ACTIVE_RUNTIME:
        log.info("task %s: message dead-lettered (%s) but its orchestration is %s",
                 task_id, reason, runtime)
        return
    description = msg.dead_letter_error_description or "no description"
    done = await asyncio.to_thread(
        TaskService(services()).finish, task_id, TaskStatus.FAILED,
        reason=f"dead-lettered: {reason}",
        error=f"the task message was dead-lettered ({reason}: {description})",
        actor="system")
    if done.granted is not None:
        await wake(client, str(done.granted), "environment_granted")
