"""Timer work: expired leases (agent vanished), agents gone offline, the job-event outbox.

A lease expires when its agent stopped heartbeating for ``lease_seconds``. Time the
control plane itself was away (paused, down, its timers stalled) does not count against
the agents: when the reaper finds it last ran well over a period ago, every lease gets a
fresh full lease from now, since no agent could have renewed meanwhile. A job of a kind
safe to repeat (see ``dispatch.MAX_ATTEMPTS``) goes back to pending for another agent and
its task back to waiting; any other job ends ``lost`` with "agent lost: no heartbeat since
…", and its orchestration is woken. A job whose cancel was requested ends ``cancelled``.
Rows are taken with ``FOR UPDATE SKIP LOCKED``, so several hosts may reap at once and
each job is handled exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection

from shared.agents.effects import Effects
from shared.agents.policy import AgentPolicy
from shared.api.views import iso
from shared.domain.models import Job
from shared.domain.task_states import TaskStatus
from shared.errors import InvalidTransition, NotFound
from shared.store import agents as agent_store
from shared.store import jobs as job_store
from shared.store import tasks as task_store

EVENT_MAX_ATTEMPTS = 20
EVENT_RETRY_AFTER = timedelta(seconds=3)


REAPER_PERIOD = timedelta(seconds=5)  # the timer's schedule (functions/agent_timers.py)
# a run this much later than the period means the control plane was away, not the agents
ABSENCE_TOLERANCE = timedelta(seconds=1.5)


def _agent_words(conn: Connection[Any], job: Job) -> tuple[str, str]:
    """The job's agent by name, and when that agent last renewed *this job's* lease
    (not its last request of any kind, which a held poll or another job refreshes)."""
    since = iso(job.renewed_at or job.claimed_at) or "never"
    if job.agent_id is None:
        return "unknown agent", since
    try:
        agent = agent_store.get_agent(conn, job.agent_id)
    except NotFound:
        return "a deleted agent", since
    return agent.name, since


def credit_absence(conn: Connection[Any], now: datetime, lease: timedelta, *,
                   period: timedelta = REAPER_PERIOD) -> timedelta | None:
    """If the reaper last ran more than a period (plus tolerance) ago, the control plane
    was away: give every lease a full lease from now and return how long it was away."""
    previous = job_store.record_reaper_run(conn, now)
    if previous is None:
        return None
    away = now - previous - period
    if away <= ABSENCE_TOLERANCE:
        return None
    job_store.lease_every_job_until(conn, now + lease)
    return away


def reap_expired_leases(conn: Connection[Any], now: datetime, *,
                        lease: timedelta | None = None) -> Effects:
    """Expired leases → retried, lost or cancelled. ``lease`` (the policy's) enables the
    absence credit; None reaps by the clock alone."""
    effects = Effects()
    if lease is not None:
        credit_absence(conn, now, lease)
    # pending jobs given up on (cancel flagged before any agent took them) end now
    for job in job_store.cancelled_pending(conn):
        effects.finished.append(job_store.finish_job(
            conn, job.id, agent_id=None, status="cancelled",
            error=f"cancelled{' by ' + job.cancel_requested_by if job.cancel_requested_by else ''}"
                  " before an agent picked it up", now=now))
    for job in job_store.expired_leases(conn, now):
        name, since = _agent_words(conn, job)
        task = task_store.get_task(conn, job.task_id)
        if job.cancel_requested:
            by = f" by {job.cancel_requested_by}" if job.cancel_requested_by else ""
            why = (f"cancelled{by}; agent {name} stopped answering (no heartbeat since"
                   f" {since}) and its lease was reclaimed: the job may have run on")
            effects.finished.append(job_store.finish_job(
                conn, job.id, agent_id=None, status="cancelled", error=why, now=now))
            effects.logs.append((task, [why]))
            continue
        if job.attempts < job.max_attempts:
            again = job_store.repend_job(conn, job.id)
            job_store.notify_pending(conn, again)
            effects.logs.append((task, [
                f"agent {name} lost (no heartbeat since {since}); retrying the {job.kind} job"
                f" on another agent (attempt {job.attempts + 1} of {job.max_attempts})"]))
            try:
                task = task_store.transition(
                    conn, task.id, TaskStatus.WAITING, actor="system:lease-reaper",
                    reason=f"agent {name} lost; waiting for another agent")
                effects.tasks.append(task)
            except InvalidTransition:
                pass  # the task already ended; the next claim closes the job
            continue
        lost = job_store.finish_job(conn, job.id, agent_id=None, status="lost",
                                    error=f"agent lost: no heartbeat since {since}"
                                          f" (agent {name})", now=now)
        effects.finished.append(lost)
        effects.logs.append((task, [f"agent {name} lost: no heartbeat since {since}"]))
    return effects


def detect_offline(conn: Connection[Any], policy: AgentPolicy, now: datetime) -> Effects:
    """Agents silent for ``offline_factor`` heartbeat intervals become offline (announced
    once per transition)."""
    effects = Effects()
    pools: dict[Any, str] = {}
    for agent in agent_store.mark_offline(conn, now - policy.offline_after):
        if agent.pool_id not in pools:
            pools[agent.pool_id] = agent_store.get_pool(conn, agent.pool_id).name
        effects.agents.append((agent, pools[agent.pool_id]))
    return effects


def event_outbox(conn: Connection[Any], now: datetime) -> list[Job]:
    """Finished jobs whose ``job:<id>`` event has not reached the orchestration yet."""
    return job_store.undelivered_events(conn, finished_before=now - EVENT_RETRY_AFTER,
                                        max_attempts=EVENT_MAX_ATTEMPTS)
