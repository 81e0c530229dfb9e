"""Steps that hand work to an agent: a job dispatched to the environment's pool, then its
result, a cancel, or the deadline — whichever comes first — and the job's real end."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from functions.orchestrators._flow import Cancelled, Ctx, StepFailed, TimedOut, call
from functions.payloads import (
    AbandonJob,
    Dispatched,
    DispatchJob,
    JobOutcome,
    JobRequest,
    ScriptJob,
    TaskPlan,
)


def run_script_job(context: Ctx, task: TaskPlan, script: str, parameters: dict[str, Any],
                   timeout: timedelta) -> Generator[Any, Any, dict[str, Any]]:
    """Run catalogue ``script`` with ``parameters`` as an agent job (``run_agent_job``)."""
    return (yield from run_agent_job(context, task, "script",
                                     ScriptJob(script=script, parameters=parameters), timeout))


def run_agent_job(context: Ctx, task: TaskPlan, kind: str, payload: JobRequest,
                  timeout: timedelta) -> Generator[Any, Any, dict[str, Any]]:
    """Hand a job to an agent and wait for its result, a cancel, or the deadline.

    The agent side raises ``job:<id>`` with ``{status, result, error}`` when the job ends
    (or the lease reaper does, with status ``lost``, or ``cancelled`` once a stopped
    agent's lease is reclaimed). After a cancel or the deadline the task keeps waiting
    for that event: until the job has really stopped its environment is not released,
    so the next task can never run beside it. A job that finished anyway is reported as
    what it did (see ``task.cancel_overridden_by``).
    """
    deadline_at = context.current_utc_datetime + timeout
    dispatched = Dispatched.from_json((yield call(context, "dispatch_job", DispatchJob(
        task_id=task.task_id, kind=kind, payload=payload,
        deadline_at=deadline_at.isoformat(), job_id=context.new_uuid()))))
    if dispatched.error or not dispatched.job_id:
        raise StepFailed(dispatched.error or f"the {kind} job was not created")
    job_id = dispatched.job_id
    done = context.wait_for_external_event(f"job:{job_id}")
    cancel = context.wait_for_external_event("cancel")
    deadline = context.create_timer(deadline_at)
    winner = yield context.task_any([done, cancel, deadline])
    stopped_for: str | None = None
    by: str | None = None
    if winner is cancel:
        deadline.cancel()
        by = (cancel.result or {}).get("by") if isinstance(cancel.result, dict) else None
        stopped_for = f"cancel was requested by {by}" if by else "cancel was requested"
        # the agent sees the cancel on its next heartbeat; if it has stopped answering,
        # the reaper reclaims the lease and ends the job: either way ``done`` comes
        yield done
    elif winner is deadline:
        yield call(context, "abandon_job", AbandonJob(task_id=task.task_id, job_id=job_id))
        stopped_for = f"the {kind} job did not finish within {timeout}"
        yield done
    else:
        deadline.cancel()
    outcome = JobOutcome.from_json(done.result)
    status = outcome.status
    if status == "succeeded":
        if stopped_for is not None:
            task.cancel_overridden_by = stopped_for
        return outcome.result or {}
    error = outcome.error or ""
    if winner is deadline:
        raise TimedOut(f"{stopped_for}; it ended {status}: {error or 'no detail'}")
    if status == "cancelled":
        if error.startswith("cancelled by "):
            raise Cancelled(error)  # the control plane's words (reaper, revoke): who and how
        who = f"cancelled by {by}" if by else "cancelled"
        raise Cancelled(f"{who}; the agent stopped the job ({error or 'no detail'})")
    if by is not None:
        # asked to stop, the job ended otherwise: both facts belong in the record
        raise StepFailed(f"the {kind} job {status} after cancel was requested by {by}:"
                         f" {error or 'no detail'}")
    raise StepFailed(outcome.error or f"the {kind} job {status}")
