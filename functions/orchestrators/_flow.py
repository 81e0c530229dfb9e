"""The shape every operation's orchestration shares.

``run_task`` waits for the environment (FIFO, woken by ``environment_granted`` with a
polling timer as a safety net), runs the operation's steps, and always finishes the task
with a terminal status and a reason — succeeded, failed (with the error), or cancelled —
which also hands the environment to the next task. Steps are generator functions that
yield Durable tasks, so orchestrators stay plain, replay-safe SDK code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any, NamedTuple

import azure.durable_functions as df

from shared.tasks.service import CANCEL_REQUESTED

QUEUE_POLL = timedelta(seconds=15)
ACTIVITY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=500,
                                 max_number_of_attempts=3)
# approval notices: three tries, 2 s then 4 s apart (task events use the settings' policy)
APPROVAL_NOTICE = {"attempts": 3, "firstRetryMs": 2000}

Ctx = df.DurableOrchestrationContext
Steps = Callable[[Ctx, dict[str, Any]], Generator[Any, Any, "Outcome"]]


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


def call(context: Ctx, name: str, payload: Any) -> Any:
    """Call an activity with the standard retry policy (transient failures only)."""
    return context.call_activity_with_retry(name, ACTIVITY_RETRY, payload)


def step(context: Ctx, task: dict[str, Any], reason: str, progress: int,
         log: list[str] | None = None) -> Generator[Any, Any, None]:
    """Announce a step (running, reason, progress, log line); stop if cancel was asked."""
    answer = yield call(context, "start_step", {"taskId": task["taskId"], "reason": reason,
                                                 "progress": progress, "log": log or []})
    if answer["cancelled"]:
        raise Cancelled("cancel requested")


def log(context: Ctx, task: dict[str, Any], *lines: str,
        level: str = "info") -> Generator[Any, Any, None]:
    yield call(context, "append_log", {"taskId": task["taskId"], "lines": list(lines),
                                       "level": level})


def _begin(context: Ctx, task_id: str) -> Generator[Any, Any, dict[str, Any] | None]:
    """Approval (for protected operations), then the environment queue: the task's plan
    once it holds its environment and is running; None if it ended while waiting."""
    while True:
        decision = yield call(context, "acquire_environment", {"taskId": task_id})
        if decision["ended"]:
            return None
        if decision.get("approval") == "pending":
            if not (yield from _wait_for_approval(context, task_id,
                                                  decision["timeoutMinutes"])):
                return None
            continue
        if decision["acquired"]:
            return decision["task"]
        granted = context.wait_for_external_event("environment_granted")
        cancel = context.wait_for_external_event("cancel")
        timer = context.create_timer(context.current_utc_datetime + QUEUE_POLL)
        winner = yield context.task_any([granted, cancel, timer])
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
        state = yield call(context, "approval_outcome", {"taskId": task_id})
        if state["state"] == "approved":
            deadline.cancel()
            return True
        if state["state"] == "rejected":
            deadline.cancel()
            why = "; ".join(f"{d['by']}: {d['comment'] or 'no comment'}"
                            for d in state["decisions"] if d["decision"] == "reject")
            raise Cancelled(f"rejected by {why}")
        decided = context.wait_for_external_event("approval")
        cancel = context.wait_for_external_event("cancel")
        winner = yield context.task_any([decided, cancel, deadline])
        if winner is deadline:
            raise Cancelled(f"approval timed out after {minutes:g} minutes")
        if winner is cancel:
            deadline.cancel()
            return False


def run_task(context: Ctx, steps: Steps) -> Generator[Any, Any, dict[str, Any]]:
    """Drive one task from approval and the queue to a terminal status."""
    task_id = context.get_input()["taskId"]
    finish: dict[str, Any]
    try:
        task = yield from _begin(context, task_id)
        if task is None:  # cancelled while waiting: the cancel request ended it
            yield from notify_outcome(context, task_id, None)
            return {"status": "cancelled"}
        outcome = yield from steps(context, task)
        finish = {"status": "succeeded", "reason": outcome.reason, "result": outcome.result,
                  "log": [*outcome.log, f"succeeded: {outcome.reason}"]}
    # The reason says why in a few words (the status already says how it ended); the
    # error keeps everything, last output lines included. A cancel on request names who
    # asked (finish_task looks it up).
    except Cancelled as exc:
        why = str(exc) or CANCEL_REQUESTED
        finish = {"status": "cancelled", "reason": why, "error": why, "log": [why]}
    except TimedOut as exc:
        finish = {"status": "timed_out", "reason": _headline(str(exc)), "error": str(exc),
                  "log": [f"timed out: {exc}"]}
    except StepFailed as exc:
        finish = {"status": "failed", "reason": _headline(str(exc)), "error": str(exc),
                  "log": [f"failed: {exc}"]}
    except Exception as exc:  # an activity gave up after retries, or a bug: never stuck
        finish = {"status": "failed", "reason": f"unexpected error: {_headline(_describe(exc))}",
                  "error": _describe(exc), "log": [f"failed unexpectedly: {_describe(exc)}"]}
    done = yield call(context, "finish_task", {"taskId": task_id, **finish})
    if done["notify"]:
        yield from notify_outcome(context, task_id, done["notify"])
    return {"status": finish["status"]}


def notify_outcome(context: Ctx, task_id: str,
                   policy: dict[str, int] | None) -> Generator[Any, Any, None]:
    """Deliver the task's terminal event (Teams, e-mail) with retries and backoff. A
    delivery that finally fails is recorded by the activity (delivery rows, activity log,
    task log) and never changes the task's outcome. ``policy`` (attempts, first retry)
    comes from finish_task, which also says whether any rule could match."""
    if policy is None:
        policy = yield call(context, "notification_policy", {"taskId": task_id})
        if not policy:
            return
    yield from deliver_with_backoff(context, "notify_task_event", task_id, policy)


def deliver_with_backoff(context: Ctx, activity: str, task_id: str,
                         policy: dict[str, int]) -> Generator[Any, Any, None]:
    """Call a delivery activity until it stops raising, waiting twice as long after each
    failure (RetryOptions has no backoff coefficient in the Python SDK, so the waits are
    durable timers here). The activity records the last attempt's failure itself; it never
    reaches the task's outcome."""
    delay = timedelta(milliseconds=policy["firstRetryMs"])
    for attempt in range(1, policy["attempts"] + 1):
        try:
            yield context.call_activity(activity, {"taskId": task_id,
                                                   "maxAttempts": policy["attempts"]})
            return
        except Exception:
            if attempt == policy["attempts"]:
                return
            yield context.create_timer(context.current_utc_datetime + delay)
            delay *= 2


def notify_approval_requested(context: Ctx, task_id: str) -> Generator[Any, Any, None]:
    """Tell the project's ``approval.requested`` subscribers (once per task); a delivery
    that fails is recorded by the activity and never holds up the approval."""
    yield from deliver_with_backoff(context, "notify_approval_requested", task_id,
                                    APPROVAL_NOTICE)


def _headline(text: str, limit: int = 200) -> str:
    """The first line of an error, short enough for a status line."""
    first = (text.strip().splitlines() or [""])[0]
    first = re.sub(r"[;:,]?\s*last lines:?\s*$", "", first).rstrip(" :;")
    return first if len(first) <= limit else first[:limit - 1] + "…"


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 2000 else text[:2000] + "…"


def run_agent_job(context: Ctx, task: dict[str, Any], kind: str, payload: dict[str, Any],
                  timeout: timedelta) -> Generator[Any, Any, dict[str, Any]]:
    """Hand a job to an agent and wait for its result, a cancel, or the deadline.

    The agent side raises ``job:<id>`` with ``{status, result, error}`` when the job ends
    (or the lease reaper does, with status ``lost``).
    """
    dispatched = yield call(context, "dispatch_job", {"taskId": task["taskId"], "kind": kind,
                                                      "payload": payload})
    if dispatched.get("error"):
        raise StepFailed(dispatched["error"])
    job_id = dispatched["jobId"]
    done = context.wait_for_external_event(f"job:{job_id}")
    cancel = context.wait_for_external_event("cancel")
    deadline = context.create_timer(context.current_utc_datetime + timeout)
    winner = yield context.task_any([done, cancel, deadline])
    if winner is cancel:
        # The agent sees the cancel on its next heartbeat and stops; give it a moment.
        grace = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
        yield context.task_any([done, grace])
        if not grace.is_completed:
            grace.cancel()
        raise Cancelled("cancel requested; the agent stopped the job")
    if winner is deadline:
        yield call(context, "abandon_job", {"taskId": task["taskId"], "jobId": job_id})
        raise TimedOut(f"the {kind} job did not finish within {timeout}")
    deadline.cancel()
    outcome = done.result
    if outcome["status"] == "succeeded":
        return outcome.get("result") or {}
    if outcome["status"] == "cancelled":
        raise Cancelled(outcome.get("error") or "cancelled on the agent")
    raise StepFailed(outcome.get("error") or f"the {kind} job {outcome['status']}")
