"""What an authenticated agent does with jobs: claim, heartbeat, report logs and results.

Every function runs inside the caller's transaction and returns ``Effects`` to apply
after commit. A job belongs to the agent holding its lease; anything else an agent says
about a job it does not hold is refused with 409, which tells a stale agent (one whose
lease expired and whose job was failed or handed on) to stop that job.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.agents.effects import Effects
from shared.agents.policy import AgentPolicy
from shared.domain.models import Agent, Job
from shared.domain.task_states import TaskStatus
from shared.errors import Conflict, InvalidTransition, NotFound
from shared.store import agents as agent_store
from shared.store import jobs as job_store
from shared.store import tasks as task_store

MAX_ERROR_CHARS = 8000
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def claim(conn: Connection[Any], agent: Agent, policy: AgentPolicy,
          now: datetime) -> tuple[Job | None, Effects]:
    """Lease the next job this agent can take and mark its task running, in one
    transaction. A job whose task already ended (cancelled while pending) is closed
    as cancelled and the next one is tried."""
    effects = Effects()
    if not agent.enabled or agent.revoked_at is not None:
        return None, effects
    while True:
        job = job_store.claim_next_job(conn, agent_id=agent.id, pool_id=agent.pool_id,
                                       labels=list(agent.labels), now=now, lease=policy.lease,
                                       capacity=agent.capacity)
        if job is None:
            return None, effects
        try:
            task = task_store.transition(conn, job.task_id, TaskStatus.RUNNING,
                                         actor=f"agent:{agent.name}",
                                         reason=f"running on agent {agent.name}")
        except InvalidTransition as exc:
            closed = job_store.finish_job(conn, job.id, agent_id=agent.id, status="cancelled",
                                          error=f"not run: {exc.detail}", now=now)
            effects.finished.append(closed)
            continue
        effects.tasks.append(task)
        attempt = f" (attempt {job.attempts} of {job.max_attempts})" if job.attempts > 1 else ""
        effects.logs.append((task, [f"agent {agent.name} picked up the {job.kind} job{attempt}"]))
        return job, effects


@dataclass
class HeartbeatAnswer:
    cancel: list[str] = field(default_factory=list)   # job ids the agent must stop
    abandon: list[str] = field(default_factory=list)  # job ids no longer the agent's


def heartbeat(conn: Connection[Any], agent: Agent, policy: AgentPolicy, now: datetime, *,
              running: list[str], version: str | None = None,
              os: str | None = None) -> HeartbeatAnswer:
    """Renew the agent's leases and say which jobs to stop (liveness itself was recorded
    when the request authenticated)."""
    answer = HeartbeatAnswer()
    if (version is not None and version != agent.version) or (os is not None
                                                             and os != agent.os):
        agent_store.record_agent_info(conn, agent.id, version=version or agent.version,
                                      os=os or agent.os)
    held = job_store.renew_leases(conn, agent.id, now, policy.lease)
    held_ids = {str(j.id) for j in held}
    answer.cancel = [str(j.id) for j in held if j.cancel_requested]
    answer.abandon = [job_id for job_id in running if job_id not in held_ids]
    return answer


def came_online(conn: Connection[Any], agent: Agent) -> Effects:
    """``agentUpdated`` for an agent that was offline until this request."""
    pool = agent_store.get_pool(conn, agent.pool_id)
    return Effects(agents=[(agent, pool.name)])


def _held_job(conn: Connection[Any], agent: Agent, job_id: UUID) -> Job:
    try:
        job = job_store.get_job(conn, job_id)
    except NotFound:
        raise NotFound(f"job {job_id} not found", field="job") from None
    if job.agent_id != agent.id and job.status == "leased":
        raise NotFound(f"job {job_id} not found", field="job")  # someone else's: say nothing
    if job.status != "leased" or job.agent_id != agent.id:
        raise Conflict(f"job {job_id} is no longer leased to this agent (it is {job.status});"
                       " stop it", field="job")
    return job


def report_logs(conn: Connection[Any], agent: Agent, job_id: UUID, *, lines: list[str],
                progress: int | None) -> tuple[Job, Effects]:
    """Accept log lines (and progress) for a job the agent holds."""
    job = _held_job(conn, agent, job_id)
    effects = Effects()
    task = task_store.get_task(conn, job.task_id)
    if progress is not None:
        job_store.set_job_progress(conn, job.id, progress)
        if task.status == "running" and progress > task.progress:
            task = task_store.set_progress(conn, task.id, progress)
            effects.tasks.append(task)
    if lines:
        effects.logs.append((task, lines))
    return job, effects


def report_result(conn: Connection[Any], agent: Agent, job_id: UUID, *, status: str,
                  result: dict[str, Any] | None, error: str | None,
                  now: datetime) -> tuple[Job, Effects]:
    """Finish a job the agent holds. The task's terminal state is the orchestration's
    to set, after the ``job:<id>`` event this returns in ``effects.finished``."""
    if status not in FINAL_STATUSES:
        raise InvalidTransition(f"status must be one of {', '.join(sorted(FINAL_STATUSES))}",
                                field="status")
    if status != "succeeded" and not error:
        error = f"job {status} without an error message"
    job = _held_job(conn, agent, job_id)
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = "…" + error[-MAX_ERROR_CHARS:]
    done = job_store.finish_job(conn, job.id, agent_id=agent.id, status=status,
                                result=result, error=error, now=now)
    effects = Effects(finished=[done])
    task = task_store.get_task(conn, job.task_id)
    summary = f"agent {agent.name}: {job.kind} job {status}"
    if error and error.strip():
        summary += ": " + error.strip().splitlines()[-1]
    effects.logs.append((task, [summary]))
    return done, effects


def release(conn: Connection[Any], agent: Agent, job_id: UUID, *,
            now: datetime) -> tuple[Job, Effects]:
    """The agent hands a job back (it is shutting down). A job safe to repeat goes back to
    the pool for another agent; any other ends failed, since part of it may have run."""
    job = _held_job(conn, agent, job_id)
    effects = Effects()
    task = task_store.get_task(conn, job.task_id)
    if job.attempts < job.max_attempts and not job.cancel_requested:
        again = job_store.repend_job(conn, job.id)
        job_store.notify_pending(conn, again)
        effects.logs.append((task, [f"agent {agent.name} is shutting down and handed the"
                                    f" {job.kind} job back; waiting for another agent"]))
        with contextlib.suppress(InvalidTransition):  # the task already ended
            effects.tasks.append(task_store.transition(
                conn, task.id, TaskStatus.WAITING, actor=f"agent:{agent.name}",
                reason=f"agent {agent.name} shut down; waiting for another agent"))
        return again, effects
    error = f"agent {agent.name} shut down before the {job.kind} job finished"
    done = job_store.finish_job(conn, job.id, agent_id=agent.id, status="failed",
                                error=error, now=now)
    effects.finished.append(done)
    effects.logs.append((task, [error]))
    return done, effects


def cancel_jobs_for_task(conn: Connection[Any], task_id: UUID, now: datetime) -> Effects:
    """Cancel a task's jobs: a pending one ends now; a leased one is flagged and its agent
    is told on its next heartbeat (it then reports ``cancelled``)."""
    effects = Effects()
    for job in job_store.request_cancel(conn, task_id):
        if job.status == "pending":
            effects.finished.append(job_store.finish_job(
                conn, job.id, agent_id=None, status="cancelled", error="cancelled before an"
                " agent picked it up", now=now))
    return effects
