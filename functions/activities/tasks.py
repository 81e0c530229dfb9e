"""Activities that move a task through its lifecycle: queue, steps, logs, finish."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import azure.durable_functions as df

from functions.payloads import (
    AppendLog,
    EnvironmentDecision,
    FinishTask,
    NotifyPolicy,
    StartStep,
    StepAnswer,
    TaskPlan,
    TaskRef,
)
from functions.payloads import Finished as FinishedAnswer
from functions.wake import wake
from shared.api.views import iso
from shared.domain.models import Task
from shared.domain.task_states import TaskStatus
from shared.grants.plan import verify
from shared.logs import LogLine
from shared.services import Services, services
from shared.store import notification_rules as rule_store
from shared.store import projects as project_store
from shared.store import tasks as task_store
from shared.tasks import freezes
from shared.tasks.service import CANCEL_REQUESTED, Finished, TaskService

bp = df.Blueprint()
log = logging.getLogger("cloudops.tasks")


def task_service() -> TaskService:
    return TaskService(services())


def _plan(conn: Any, task: Task) -> tuple[TaskPlan, Task, str | None]:
    """What the orchestrator needs to plan: the task's parameters and its environment;
    and why it may not run (a grant withdrawn, the environment changed since approval).
    Read in the transaction that started the task (``acquire_environment_then``)."""
    env = project_store.get_environment_by_id(conn, task.environment_id)
    project = project_store.get_project(conn, task.project_id)
    refused = verify(conn, task, env)
    return TaskPlan(task_id=str(task.id), operation=task.operation,
                    parameters=task.parameters, requested_by=task.requested_by,
                    project=project.slug, environment=env.slug, environment_id=str(env.id),
                    environment_kind=env.kind, target=env.target, database=env.database,
                    url=env.url), task, refused


@bp.activity_trigger(input_name="payload")
def acquire_environment(payload: dict[str, Any]) -> dict[str, Any]:
    """The task's next move: wait for approval, wait in the environment queue, or run —
    then it is running and comes with its plan."""
    decision = decide(UUID(TaskRef.from_json(payload).task_id))
    assert decision is not None  # only_if_waiting is off
    return decision.to_json()


def decide(task_id: UUID, *, only_if_waiting: bool = False) -> EnvironmentDecision | None:
    """``acquire_environment``'s answer (it may take the environment and start the task).
    ``only_if_waiting``: None unless the task is waiting (``granted_decision``)."""
    svc = task_service()
    # one connection reads what decides every answer before the queue: ended, cancel,
    # approval, freeze windows (reads, no lock: no BEGIN/COMMIT)
    with services().db.statements() as conn:
        found = task_store.task_with_queue_state(conn, task_id)
        row = found[1] if found is not None else None
        if only_if_waiting and (row is None or row["status"] != TaskStatus.WAITING
                                or row["cancel_requested"]):
            return None
        early = _before_the_queue(row)
        if early is None:
            assert found is not None  # a missing task is answered early
            task = found[0]
            frozen = freezes.frozen_now(conn, task.environment_id, task.operation,
                                        services().clock.now())
    if early is not None:
        return early
    held, lifted = _freeze_answer(svc, task, frozen)
    if held is not None:
        return held
    decision, planned = svc.acquire_environment_then(task_id, _plan)
    if not decision.acquired:
        return EnvironmentDecision(acquired=False, ended=False, reason=decision.reason,
                                   position=decision.position)
    assert planned is not None  # acquired: _plan ran
    plan, task, refused = planned
    if lifted:
        svc.log(task, [lifted], level="warning")
    state = (row["approval"] if row is not None else None) or {}
    if state.get("state") == "pre-approved":
        svc.log(task, [f"pre-approved: scheduled by {state['by']}, who may approve here"])
    return EnvironmentDecision(acquired=True, ended=False, reason=decision.reason, task=plan,
                               refused=refused)


def _before_the_queue(row: task_store.QueueState | None) -> EnvironmentDecision | None:
    """The answers that need only the task's row: ended, cancel asked, awaiting approval."""
    if row is None or TaskStatus(row["status"]).terminal:
        return EnvironmentDecision(acquired=False, ended=True, reason="cancelled")
    if row["cancel_requested"]:
        if row["status"] == TaskStatus.RUNNING:
            # started by the task it followed (granted_decision) and asked to stop before
            # its orchestration took over: the orchestration ends it
            return EnvironmentDecision(acquired=False, ended=False, cancelled=True,
                                       reason=CANCEL_REQUESTED)
        return EnvironmentDecision(acquired=False, ended=True, reason="cancelled")
    state = row["approval"] or {}
    if row["queue_seq"] is None and state.get("state") in ("pending", "approved", "rejected"):
        return EnvironmentDecision(
            acquired=False, ended=False, approval="pending",
            timeout_minutes=float(state.get("timeoutMinutes", 1440)))
    return None


def granted_decision(task_id: UUID) -> dict[str, Any]:
    """What ``environment_granted`` carries to the task just handed the environment: its
    ``acquire_environment`` answer when it could start (it is then running, and its
    orchestration goes on without asking again), else nothing (it asks, as before).

    Only a waiting task is started here: its orchestration is known to be in the queue
    loop. One still queued may have no orchestration yet (its message on the way), and
    must stay queued for the sweeper's re-send. The event is a hint as before: if it is
    lost, the orchestration's poll asks ``acquire_environment``, which finds it holding
    the environment and already running."""
    decision = decide(task_id, only_if_waiting=True)
    return decision.to_json() if decision is not None and decision.acquired else {}


def _freeze_answer(svc: TaskService, task: Task, frozen: freezes.Frozen | None
                   ) -> tuple[EnvironmentDecision | None, str | None]:
    """Before the task takes its environment: a freeze window holds it (waiting, saying
    until when), or refuses it if it started after the request. An admin's override lets
    it through: the second value is the line for its log once it runs."""
    if frozen is None:
        return None, None
    if frozen.overridden is not None:
        o = frozen.overridden
        return None, (f"{frozen.window.what()} overridden by {o.by} (until {iso(o.until)}):"
                      f" {o.reason}")
    if frozen.mode == "refuse":
        return EnvironmentDecision(acquired=False, ended=False, frozen="refuse",
                                   reason=freezes.refusal(frozen, task.operation)), None
    reason = f"held: {frozen.reason}"
    if task.status != TaskStatus.WAITING or task.reason != reason:
        svc.move(task.id, TaskStatus.WAITING, reason=reason)
        svc.log(task, [reason])
    return EnvironmentDecision(acquired=False, ended=False, frozen="hold", reason=reason,
                               until=iso(frozen.until)), None


@bp.activity_trigger(input_name="payload")
def start_step(payload: dict[str, Any]) -> dict[str, Any]:
    """Enter a step: running, with a reason and progress; refused once cancel was asked."""
    svc = task_service()
    asked = StartStep.from_json(payload)
    task_id = UUID(asked.task_id)
    if svc.cancel_requested(task_id):
        return StepAnswer(cancelled=True, by=svc.canceller(task_id)).to_json()
    task = svc.move(task_id, TaskStatus.RUNNING, reason=asked.reason, progress=asked.progress)
    if asked.log:
        svc.log(task, asked.log)
    return StepAnswer(cancelled=False).to_json()


@bp.activity_trigger(input_name="payload")
def append_log(payload: dict[str, Any]) -> int:
    svc = task_service()
    asked = AppendLog.from_json(payload)
    with services().db.transaction() as conn:
        task = task_store.get_task(conn, asked.task_id)
    svc.log(task, asked.lines, level=asked.level)
    return len(asked.lines)


@bp.activity_trigger(input_name="payload")
@bp.durable_client_input(client_name="client")
async def finish_task(payload: dict[str, Any],
                      client: df.DurableOrchestrationClient) -> dict[str, Any]:
    """End the task and hand its environment to the next task's orchestration.

    The closing log line is written first, so a reader who sees a terminal status also
    sees the whole log."""
    svc = task_service()
    asked = FinishTask.from_json(payload)
    status = TaskStatus(asked.status)
    task_id = UUID(asked.task_id)

    any_rule = False

    def close() -> Finished:
        nonlocal any_rule
        with services().db.statements() as conn:  # one read, no lock: no BEGIN/COMMIT
            # with whether to deliver its events, read here rather than in a transaction
            # of its own (rules changed while it closes are as if changed just after)
            task, any_rule = rule_store.task_and_any_rule(conn, task_id)
        reason, error, lines = asked.reason, asked.error, asked.log
        if status == TaskStatus.CANCELLED and reason.startswith(CANCEL_REQUESTED):
            # "cancel requested; the agent stopped the job" → "cancelled by ana; the ..."
            # "cancel requested; the agent stopped the job" → reason "cancelled by ana",
            # error "cancelled by ana; the agent stopped the job"
            who = svc.cancelled_by(task_id)
            error = who + reason[len(CANCEL_REQUESTED):]
            reason, lines = who, [error]
        closing: list[LogLine] = []
        if not TaskStatus(task.status).terminal and lines:
            level = {TaskStatus.SUCCEEDED: "info", TaskStatus.CANCELLED: "warning"}.get(
                status, "error")
            closing = svc.log(task, lines, level, publish=False)  # sent with the snapshot
        return svc.finish(task_id, status, reason=reason, error=error, result=asked.result,
                          closing_log=closing)

    done = await asyncio.to_thread(close)
    if done.granted is not None:
        try:
            carried = await asyncio.to_thread(granted_decision, done.granted)
        except Exception:  # the wake-up still goes: the woken task then asks, as before
            log.exception("could not start task %s for its orchestration", done.granted)
            carried = {}
        await wake(client, str(done.granted), "environment_granted", carried)
    notify = _policy(services()) if done.task is not None and any_rule else None
    return FinishedAnswer(finished=done.task is not None, notify=notify).to_json()


def notification_policy_for(task_id: UUID) -> NotifyPolicy | None:
    """Retry policy for delivering the task's events, or None when no rule could match
    (so most tasks skip the delivery activity entirely)."""
    svc = services()
    with svc.db.transaction() as conn:
        any_rule = rule_store.any_rule_for_task(conn, task_id)
    return _policy(svc) if any_rule else None


def _policy(svc: Services) -> NotifyPolicy:
    return NotifyPolicy(attempts=svc.settings.notify_attempts,
                        first_retry_ms=svc.settings.notify_first_retry_ms)


@bp.activity_trigger(input_name="payload")
def notification_policy(payload: dict[str, Any]) -> dict[str, Any] | None:
    policy = notification_policy_for(UUID(TaskRef.from_json(payload).task_id))
    return None if policy is None else policy.to_json()
