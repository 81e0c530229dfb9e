"""A revoked agent's leased jobs fail over at once, not when their leases run out.

Its keys are void, so it can report nothing more: a job of a kind safe to repeat goes
back to pending for another agent (its task waits again), any other ends ``failed``
saying the agent was revoked, and a job whose cancel was asked ends ``cancelled``.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

from psycopg import Connection

from shared.agents.effects import Effects
from shared.domain.models import Agent
from shared.domain.task_states import TaskStatus
from shared.errors import InvalidTransition
from shared.store import jobs as job_store
from shared.store import tasks as task_store


def fail_over_revoked(conn: Connection[Any], agent: Agent, *, actor: str,
                      now: datetime) -> Effects:
    effects = Effects()
    for job in job_store.leased_jobs(conn, agent.id):
        task = task_store.get_task(conn, job.task_id)
        if job.cancel_requested:
            effects.finished.append(job_store.finish_job(
                conn, job.id, agent_id=None, status="cancelled", now=now,
                error=f"cancelled; agent {agent.name} was revoked by {actor}"))
        elif job.attempts < job.max_attempts:
            again = job_store.repend_job(conn, job.id)
            job_store.notify_pending(conn, again)
            effects.logs.append((task, [
                f"agent {agent.name} was revoked by {actor}; retrying the {job.kind} job on"
                f" another agent (attempt {job.attempts + 1} of {job.max_attempts})"]))
            # a task that already ended stays ended; the next claim closes the job
            with suppress(InvalidTransition):
                effects.tasks.append(task_store.transition(
                    conn, task.id, TaskStatus.WAITING, actor="system",
                    reason=f"agent {agent.name} revoked; waiting for another agent"))
        else:
            effects.finished.append(job_store.finish_job(
                conn, job.id, agent_id=None, status="failed", now=now,
                error=f"agent {agent.name} was revoked by {actor} while running this"
                      f" {job.kind} job (not safe to repeat on another agent)"))
            effects.logs.append((task, [f"agent {agent.name} was revoked by {actor}"]))
    return effects
