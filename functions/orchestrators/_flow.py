"""The shape every operation's orchestration shares.

``run_task`` waits for the environment (FIFO, woken by ``environment_granted`` with a
polling timer as a safety net), runs the operation's steps, and always finishes the task
with a terminal status and a reason — succeeded, failed (with the error), or cancelled —
which also hands the environment to the next task. Steps are generator functions that
yield Durable tasks, so orchestrators stay plain, replay-safe SDK code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import azure.durable_functions as df

from functions.payloads import AppendLog as AppendLogPayload
from functions.payloads import (
    ApprovalOutcome,
    Delivery,
    EnvironmentDecision,
    Finished,
    FinishTask,
    NotifyPolicy,
    Payload,
    StartStep,
    StepAnswer,
    TaskPlan,
    TaskRef,
)
from shared.tasks.service import CANCEL_REQUESTED

QUEUE_POLL = timedelta(seconds=15)
# a held task re-checks its freezes at the window's end, and at least this often (a changed
# window or an override also wakes it at once)
FREEZE_POLL = timedelta(minutes=15)
ACTIVITY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=500,
                                 max_number_of_attempts=3)
# approval notices: three tries, 2 s then 4 s apart (task events use the settings' policy)
APPROVAL_NOTICE = NotifyPolicy(attempts=3, first_retry_ms=2000)

Ctx = df.DurableOrchestrationContext
Steps = Callable[[Ctx, TaskPlan], Generator[Any, Any, "Outcome"]]


class Outcome(NamedTuple):
    reason: str
    result: dict[str, Any] | None = None
    log: tuple[str, ...] = ()  # lines logged just before the task finishes


class StepFailed(Exception):
    """A step failed for a reason the user should read (not a bug)."""


class Cancelled(Exception):
    """Cancel was requested; the task ends cancelled."""


class TimedOut(Exception):
    """A step ran out of time; the task ends timed_out."""


def call(context: Ctx, name: str, payload: Payload) -> Any:
    """Call an activity with the standard retry policy (transient failures only); the
    answer comes back as JSON, for the caller's ``Model.from_json``."""
    return context.call_activity_with_retry(name, ACTIVITY_RETRY, payload.to_json())


def step(context: Ctx, task: TaskPlan, reason: str, progress: int,
         log: list[str] | None = None) -> Generator[Any, Any, None]:
    """Announce a step (running, reason, progress, log line); stop if cancel was asked."""
    answer = StepAnswer.from_json((yield call(context, "start_step", StartStep(
        task_id=task.task_id, reason=reason, progress=progress, log=log or []))))
    if answer.cancelled:
        raise Cancelled(f"cancelled by {answer.by}" if answer.by else "cancel requested")


def log(context: Ctx, task: TaskPlan, *lines: str,
        level: str = "info") -> Generator[Any, Any, None]:
    yield call(context, "append_log", AppendLogPayload(task_id=task.task_id,
                                                       lines=list(lines), level=level))


def _begin(context: Ctx, task_id: str) -> Generator[Any, Any, TaskPlan | None]:
    """Approval (for protected operations), then the environment queue: the task's plan
    once it holds its environment and is running; None if it ended while waiting."""
    carried: EnvironmentDecision | None = None
    while True:
        decision = carried or EnvironmentDecision.from_json(
            (yield call(context, "acquire_environment", TaskRef(task_id=task_id))))
        carried = None
        if decision.ended:
            return None
        if decision.cancelled:  # started by the task before it, then asked to stop
            raise Cancelled(CANCEL_REQUESTED)
        if decision.approval == "pending":
            if not (yield from _wait_for_approval(context, task_id,
                                                  decision.timeout_minutes or 1440)):
                return None
            continue
        if decision.frozen == "refuse":  # a refusing window began after the request
            raise StepFailed(decision.reason or "refused by a change freeze")
        if decision.frozen == "hold":  # then re-checked: it may run, or still wait
            yield from _hold_for_freeze(context, decision.until or "")
            continue
        if decision.acquired:
            if decision.refused:  # grants withdrawn, or changed since approval
                raise StepFailed(decision.refused)
            return decision.task
        granted = context.wait_for_external_event("environment_granted")
        cancel = context.wait_for_external_event("cancel")
        timer = context.create_timer(context.current_utc_datetime + QUEUE_POLL)
        winner = yield context.task_any([granted, cancel, timer])
        if winner is not timer:
            timer.cancel()
        if winner is granted:
            carried = _carried_decision(granted.result)


def _carried_decision(data: Any) -> EnvironmentDecision | None:
    """The decision an ``environment_granted`` event carries: the finishing task took the
    environment for this one and started it, so it need not ask again. Events raised
    before that (and by the sweeper, cancels, dead letters) carry ``{}``: ask."""
    if isinstance(data, str):  # a payload raised as a JSON string
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict) or not data.get("acquired"):
        return None
    return EnvironmentDecision.from_json(data)


def _hold_for_freeze(context: Ctx, until: str) -> Generator[Any, Any, None]:
    """Wait on a durable timer until the freeze ends (or the re-check poll), a change of
    the windows or an override, or a cancel (the next check sees the task ended)."""
    now = context.current_utc_datetime
    end = datetime.fromisoformat(until.replace("Z", "+00:00"))
    if now.tzinfo is None:
        end = end.astimezone(UTC).replace(tzinfo=None)
    wake_at = max(now, min(end, now + FREEZE_POLL))
    timer = context.create_timer(wake_at)
    changed = context.wait_for_external_event("freezes_changed")
    cancel = context.wait_for_external_event("cancel")
    winner = yield context.task_any([timer, changed, cancel])
    if winner is not timer:
        timer.cancel()


def _wait_for_approval(context: Ctx, task_id: str,
                       minutes: float) -> Generator[Any, Any, bool]:
    """Hold a protected operation until approved (True), rejected or timed out (raise),
    or cancelled meanwhile (False: the cancel already ended it). Decisions may have come
    before the orchestration got here, so the state is read before each wait."""
    yield from notify_approval_requested(context, task_id)
    deadline = context.create_timer(context.current_utc_datetime
                                    + timedelta(minutes=minutes))
    while True:
        state = ApprovalOutcome.from_json(
            (yield call(context, "approval_outcome", TaskRef(task_id=task_id))))
        if state.state == "approved":
            deadline.cancel()
            return True
        if state.state == "rejected":
            deadline.cancel()
            why = "; ".join(f"{d.by}: {d.comment or 'no comment'}"
                            for d in state.decisions if d.decision == "reject")
            raise Cancelled(f"rejected by {why}")
        decided = context.wait_for_external_event("approval")
        cancel = context.wait_for_external_event("cancel")
        # A decision is committed before its wake-up is raised; the poll re-reads it if
        # the wake-up was lost.
        poll = context.create_timer(context.current_utc_datetime + QUEUE_POLL)
        winner = yield context.task_any([decided, cancel, deadline, poll])
        if winner is not poll:
            poll.cancel()
        if winner is deadline:
            raise Cancelled(f"approval timed out after {minutes:g} minutes")
        if winner is cancel:
            deadline.cancel()
            return False


def run_task(context: Ctx, steps: Steps) -> Generator[Any, Any, dict[str, Any]]:
    """Drive one task from approval and the queue to a terminal status."""
    task_id = TaskRef.from_json(context.get_input() or {}).task_id
    finish: FinishTask
    task: TaskPlan | None = None
    try:
        task = yield from _begin(context, task_id)
        if task is None:  # cancelled while waiting: the cancel request ended it
            yield from notify_outcome(context, task_id, None)
            return {"status": "cancelled"}
        outcome = yield from steps(context, task)
        reason = outcome.reason
        if task.cancel_overridden_by:
            # the record says what happened: the work was done although it was asked to stop
            reason += (f" (succeeded after {task.cancel_overridden_by}: the job had"
                       " finished before it could be stopped)")
        finish = FinishTask(task_id=task_id, status="succeeded", reason=reason,
                            result=outcome.result, log=[*outcome.log, f"succeeded: {reason}"])
    # The reason says why in a few words (the status already says how it ended); the
    # error keeps everything, last output lines included. A cancel names who asked
    # (here when the step knew it, else finish_task looks it up).
    except Cancelled as exc:
        error = str(exc) or CANCEL_REQUESTED
        if task is not None and task.cancel_overridden_by:
            error = (f"{error}; an agent job had already succeeded after"
                     f" {task.cancel_overridden_by}, the later steps did not run")
        finish = FinishTask(task_id=task_id, status="cancelled", reason=_cancel_reason(error),
                            error=error, log=[error])
    except TimedOut as exc:
        finish = FinishTask(task_id=task_id, status="timed_out", reason=_headline(str(exc)),
                            error=str(exc), log=[f"timed out: {exc}"])
    except StepFailed as exc:
        finish = FinishTask(task_id=task_id, status="failed", reason=_headline(str(exc)),
                            error=str(exc), log=[f"failed: {exc}"])
    except Exception as exc:  # an activity gave up after retries, or a bug: never stuck
        finish = FinishTask(task_id=task_id, status="failed",
                            reason=f"unexpected error: {_headline(_describe(exc))}",
                            error=_describe(exc), log=[f"failed unexpectedly: {_describe(exc)}"])
    done = Finished.from_json((yield call(context, "finish_task", finish)))
    if done.notify:
        yield from notify_outcome(context, task_id, done.notify)
    return {"status": finish.status}


def notify_outcome(context: Ctx, task_id: str,
                   policy: NotifyPolicy | None) -> Generator[Any, Any, None]:
    """Deliver the task's terminal event (Teams, e-mail) with retries and backoff. A
    delivery that finally fails is recorded by the activity (delivery rows, activity log,
    task log) and never changes the task's outcome. ``policy`` (attempts, first retry)
    comes from finish_task, which also says whether any rule could match."""
    if policy is None:
        answer = yield call(context, "notification_policy", TaskRef(task_id=task_id))
        if not answer:
            return
        policy = NotifyPolicy.from_json(answer)
    yield from deliver_with_backoff(context, "notify_task_event", task_id, policy)


def deliver_with_backoff(context: Ctx, activity: str, task_id: str,
                         policy: NotifyPolicy) -> Generator[Any, Any, None]:
    """Call a delivery activity until it stops raising, waiting twice as long after each
    failure (RetryOptions has no backoff coefficient in the Python SDK, so the waits are
    durable timers here). The activity records the last attempt's failure itself; it never
    reaches the task's outcome."""
    delay = timedelta(milliseconds=policy.first_retry_ms)
    for attempt in range(1, policy.attempts + 1):
        try:
            yield context.call_activity(activity, Delivery(
                task_id=task_id, max_attempts=policy.attempts).to_json())
            return
        except Exception:
            if attempt == policy.attempts:
                return
            yield context.create_timer(context.current_utc_datetime + delay)
            delay *= 2


def notify_approval_requested(context: Ctx, task_id: str) -> Generator[Any, Any, None]:
    """Tell the project's ``approval.requested`` subscribers (once per task); a delivery
    that fails is recorded by the activity and never holds up the approval."""
    yield from deliver_with_backoff(context, "notify_approval_requested", task_id,
                                    APPROVAL_NOTICE)


def _cancel_reason(error: str) -> str:
    """The task's short reason: "cancelled by <who>" when the error names who asked."""
    head = error.split(";", 1)[0].strip()
    return head if head.startswith("cancelled by ") else _headline(error)


def _headline(text: str, limit: int = 200) -> str:
    """The first line of an error, short enough for a status line."""
    first = (text.strip().splitlines() or [""])[0]
    first = re.sub(r"[;:,]?\s*last lines:?\s*$", "", first).rstrip(" :;")
    return first if len(first) <= limit else first[:limit - 1] + "…"


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 2000 else text[:2000] + "…"


