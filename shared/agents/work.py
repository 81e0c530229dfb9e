"""What an authenticated agent does with jobs: claim, heartbeat, report logs and results.

Every function runs inside the caller's transaction and returns ``Effects`` to apply
after commit. A job belongs to the agent holding its lease; anything else an agent says
about a job it does not hold is refused with 409, which tells a stale agent (one whose
lease expired and whose job was failed or handed on) to stop that job.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.agents.effects import Effects
from shared.agents.policy import AgentPolicy
from shared.agents.text import storable, storable_json
from shared.domain.models import Agent, Job
from shared.domain.task_states import TaskStatus
from shared.errors import Conflict, InvalidTransition, NotFound, Unauthorized
from shared.store import agents as agent_store
from shared.store import jobs as job_store
from shared.store import tasks as task_store

MAX_ERROR_CHARS = 8000
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
IN_FLIGHT_GRACE = timedelta(seconds=5)


def claim(conn: Connection[Any], agent: Agent, policy: AgentPolicy, now: datetime, *,
          key_hash: str | None = None) -> tuple[Job | None, Effects]:
    """Lease the next job this agent can take and mark its task running, in one
    transaction. A job whose task already ended (cancelled while pending) is closed
    as cancelled and the next one is tried.

    The agent's state is read again here, under a lock that revoke/disable/rotate wait
    for: a long poll may have started minutes ago, and a revoked agent must not receive
    a job (with its URLs and argv) on the strength of how things were back then."""
    effects = Effects()
    current = _current_state(conn, agent, now, key_hash)
    if current == "revoked":
        raise Unauthorized("the agent key is not valid: unknown, expired, revoked or"
                           " rotated out")
    if current == "disabled":
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


def _current_state(conn: Connection[Any], agent: Agent, now: datetime,
                   key_hash: str | None) -> str:
    """revoked (also: the presented key no longer valid) | disabled | ok, read with a
    share lock so a concurrent revoke either precedes this claim or sees its lease."""
    row = agent_store.key_state_for_claim(conn, agent.id)
    if row is None or row["revoked_at"] is not None:
        return "revoked"
    if key_hash is not None and not (
            (row["key_hash"] == key_hash and row["key_expires_at"] > now)
            or (row["previous_key_hash"] == key_hash
                and (row["previous_key_expires_at"] or now) > now)):
        return "revoked"
    return "ok" if row["enabled"] else "disabled"


def unclaim(conn: Connection[Any], agent: Agent, job: Job) -> Effects:
    """The poll that claimed ``job`` was gone before the answer could be written: the
    job goes back to the pool untouched (nothing ran) and the task back to waiting."""
    effects = Effects()
    again = job_store.unclaim_job(conn, job.id, agent.id)
    if again is None:
        return effects
    job_store.notify_pending(conn, again)
    with contextlib.suppress(InvalidTransition):
        task = task_store.transition(
            conn, job.task_id, TaskStatus.WAITING, actor=f"agent:{agent.name}",
            reason=f"agent {agent.name} went away before the {job.kind} job reached it;"
                   " waiting for an agent")
        effects.tasks.append(task)
        effects.logs.append((task, [f"the {job.kind} job never reached agent {agent.name}"
                                    " (its poll had gone); offered again"]))
    return effects


@dataclass
class HeartbeatAnswer:
    cancel: list[str] = field(default_factory=list)   # job ids the agent must stop
    abandon: list[str] = field(default_factory=list)  # job ids no longer the agent's
    effects: Effects = field(default_factory=Effects)


def heartbeat(conn: Connection[Any], agent: Agent, policy: AgentPolicy, now: datetime, *,
              running: list[str], version: str | None = None,
              os: str | None = None) -> HeartbeatAnswer:
    """Renew the leases of the jobs the agent says it runs, and only those; a job leased
    to it that it no longer names is abandoned now (a job claimed within the last two
    heartbeat intervals, at least ``IN_FLIGHT_GRACE``, may still be on its way to the
    agent and is kept).

    Liveness itself was recorded when the request authenticated."""
    answer = HeartbeatAnswer()
    if (version is not None and version != agent.version) or (os is not None
                                                             and os != agent.os):
        agent_store.record_agent_info(conn, agent.id, version=version or agent.version,
                                      os=os or agent.os)
    listed = [u for u in (_uuid(j) for j in running) if u is not None]
    held = job_store.renew_leases(conn, agent.id, listed, now, policy.lease)
    held_ids = {str(j.id) for j in held}
    answer.cancel = [str(j.id) for j in held if j.cancel_requested]
    answer.abandon = [job_id for job_id in running if job_id not in held_ids]
    # a heartbeat sent just before a claim's answer arrived may be processed after it
    in_flight = now - max(policy.heartbeat * 2, IN_FLIGHT_GRACE)
    for job in job_store.leased_jobs(conn, agent.id):
        if str(job.id) in held_ids:
            continue
        if job.claimed_at is not None and job.claimed_at > in_flight:
            job_store.renew_leases(conn, agent.id, [job.id], now, policy.lease)
            continue
        answer.effects.extend(_abandon(
            conn, agent, job, now=now, actor=f"agent:{agent.name}",
            why=f"agent {agent.name} no longer runs the {job.kind} job (its heartbeat did"
                " not list it)"))
        answer.abandon.append(str(job.id))
    return answer


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _abandon(conn: Connection[Any], agent: Agent, job: Job, *, now: datetime, actor: str,
             why: str) -> Effects:
    """A job its agent will not finish: ``cancelled`` if a cancel was asked, back to the
    pool if its kind is safe to repeat, else ``failed`` with ``why`` as the reason."""
    effects = Effects()
    task = task_store.get_task(conn, job.task_id)
    if job.cancel_requested:
        by = f" by {job.cancel_requested_by}" if job.cancel_requested_by else ""
        done = job_store.finish_job(conn, job.id, agent_id=None, status="cancelled",
                                    error=f"cancelled{by}; {why}", now=now)
        effects.finished.append(done)
        effects.logs.append((task, [f"cancelled{by}; {why}"]))
        return effects
    if job.attempts < job.max_attempts:
        again = job_store.repend_job(conn, job.id)
        job_store.notify_pending(conn, again)
        effects.logs.append((task, [f"{why}; the {job.kind} job is safe to repeat: waiting for"
                                    f" another agent (attempt {job.attempts + 1} of"
                                    f" {job.max_attempts})"]))
        with contextlib.suppress(InvalidTransition):  # the task already ended
            effects.tasks.append(task_store.transition(
                conn, task.id, TaskStatus.WAITING, actor=actor,
                reason=f"{why}; waiting for another agent"))
        return effects
    done = job_store.finish_job(conn, job.id, agent_id=None, status="failed", error=why,
                                now=now)
    effects.finished.append(done)
    effects.logs.append((task, [why]))
    return effects


def agent_revoked(conn: Connection[Any], agent: Agent, *, actor: str,
                  now: datetime) -> Effects:
    """End what a just-revoked agent held: it may not report on it any more."""
    effects = Effects()
    for job in job_store.leased_jobs(conn, agent.id):
        effects.extend(_abandon(conn, agent, job, now=now, actor=actor,
                                why=f"agent {agent.name} was revoked by {actor} while it"
                                    f" held the {job.kind} job"))
    return effects


def drop_inherited_leases(conn: Connection[Any], agent: Agent, *, now: datetime) -> Effects:
    """An agent registering again starts with nothing: the jobs its previous run held
    are not its new process's, so they are not left to time out under its name."""
    effects = Effects()
    for job in job_store.leased_jobs(conn, agent.id):
        if job.claimed_at is not None and job.claimed_at >= now:
            continue
        effects.extend(_abandon(conn, agent, job, now=now, actor=f"agent:{agent.name}",
                                why=f"agent {agent.name} registered again; its previous run"
                                    f" held the {job.kind} job and is gone"))
    return effects


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
        effects.logs.append((task, [storable(line) for line in lines]))
    return job, effects


def report_result(conn: Connection[Any], agent: Agent, job_id: UUID, *, status: str,
                  result: dict[str, Any] | None, error: str | None,
                  now: datetime) -> tuple[Job, Effects]:
    """Finish a job the agent holds. The task's terminal state is the orchestration's
    to set, after the ``job:<id>`` event this returns in ``effects.finished``.

    The same result sent again (its answer was lost) is answered with the job as
    recorded and changes nothing. A result after a cancel request is recorded as what
    happened: a job that succeeded anyway says so."""
    if status not in FINAL_STATUSES:
        raise InvalidTransition(f"status must be one of {', '.join(sorted(FINAL_STATUSES))}",
                                field="status")
    if status != "succeeded" and not error:
        error = f"job {status} without an error message"
    error = storable(error) if error is not None else None
    result = storable_json(result) if result is not None else None
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = "…" + error[-MAX_ERROR_CHARS:]
    repeat = _repeated_result(conn, agent, job_id, status)
    if repeat is not None:
        return repeat, Effects()
    job = _held_job(conn, agent, job_id)
    done = job_store.finish_job(conn, job.id, agent_id=agent.id, status=status,
                                result=result, error=error, now=now)
    effects = Effects(finished=[done])
    task = task_store.get_task(conn, job.task_id)
    summary = f"agent {agent.name}: {job.kind} job {status}"
    if job.cancel_requested and status != "cancelled":
        by = f" by {job.cancel_requested_by}" if job.cancel_requested_by else ""
        summary += f" after cancel was requested{by} (it finished before it could stop)"
    if error and error.strip():
        summary += ": " + error.strip().splitlines()[-1]
    effects.logs.append((task, [summary]))
    return done, effects


def _repeated_result(conn: Connection[Any], agent: Agent, job_id: UUID,
                     status: str) -> Job | None:
    """The job, if this agent already finished it with this status."""
    try:
        job = job_store.get_job(conn, job_id)
    except NotFound:
        return None
    if job.agent_id == agent.id and job.status == status and job.finished_at is not None:
        return job
    return None


def late_result_note(conn: Connection[Any], agent: Agent, job_id: UUID,
                     status: str) -> Effects:
    """A result refused because the job was no longer the agent's: still write in the
    task's log what the agent said happened, so the record is complete."""
    try:
        job = job_store.get_job(conn, job_id)
    except NotFound:
        return Effects()
    if job.agent_id != agent.id:
        return Effects()
    task = task_store.get_task(conn, job.task_id)
    return Effects(logs=[(task, [
        f"agent {agent.name} reported the {job.kind} job {storable(status)} after it had"
        f" already ended {job.status} ({job.error or 'no reason recorded'}); not accepted"])])


def release(conn: Connection[Any], agent: Agent, job_id: UUID, *,
            now: datetime) -> tuple[Job, Effects]:
    """The agent hands a job back (it is shutting down). A job safe to repeat goes back to
    the pool for another agent; any other ends failed, since part of it may have run."""
    job = _held_job(conn, agent, job_id)
    effects = _abandon(conn, agent, job, now=now, actor=f"agent:{agent.name}",
                       why=f"agent {agent.name} shut down before the {job.kind} job"
                           " finished")
    return job_store.get_job(conn, job.id), effects


def cancel_jobs_for_task(conn: Connection[Any], task_id: UUID, now: datetime, *,
                         by: str | None = None) -> Effects:
    """Cancel a task's jobs: a pending one ends now; a leased one is flagged and its agent
    is told on its next heartbeat (it then reports ``cancelled``, or what really
    happened if the job finished first)."""
    effects = Effects()
    for job in job_store.request_cancel(conn, task_id, by):
        if job.status == "pending":
            who = f" by {job.cancel_requested_by}" if job.cancel_requested_by else ""
            effects.finished.append(job_store.finish_job(
                conn, job.id, agent_id=None, status="cancelled",
                error=f"cancelled{who} before an agent picked it up", now=now))
    return effects
