"""Creating agent jobs for the orchestrations, failing fast when no agent could ever run one.

Retry policy per job kind (what happens when the agent running it vanishes):

- ``backup``: re-leased to another agent, up to 3 attempts (a dump only reads; the
  upload overwrites the same artifact).
- ``restart``: re-leased to another agent, up to 3 attempts (a rollout restart is
  idempotent).
- ``restore``: fails with "agent lost: ..." (a half-done restore needs a person's look).
- ``script``: fails with "agent lost: ..." (scripts and deploys may not be repeatable).

``deploy`` to agent targets is a ``script`` job with the version in argv.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.agents.policy import AgentPolicy, agent_policy
from shared.domain.models import Job, Task
from shared.errors import DomainError, NotFound
from shared.store import agents as agent_store
from shared.store import jobs as job_store

KINDS = frozenset({"backup", "restore", "script", "restart", "drop_database"})
MAX_ATTEMPTS = {"backup": 3, "restart": 3, "restore": 1, "script": 1,
                "drop_database": 3}  # dropdb --if-exists: safe to repeat


class NoCapableAgent(DomainError):
    """No registered, enabled agent in the pool has the demanded labels: the job could
    never run, so the task fails at once with this reason."""

    status = 422
    title = "No capable agent"


def _labels_text(demands: list[str]) -> str:
    return ", ".join(sorted(set(demands))) if demands else "(none)"


def dispatch_job(conn: Connection[Any], *, task: Task, kind: str, payload: dict[str, Any],
                 pool: str, demands: list[str], now: datetime,
                 policy: AgentPolicy | None = None, job_id: UUID | None = None
                 ) -> tuple[Job, bool]:
    """Create the job for ``task`` (agents are woken by NOTIFY once the caller commits);
    ``(job, created)`` — with ``job_id`` given, a second call finds the first call's job
    (``created`` False) instead of creating another (see ``job_store.create_job``).

    Raises ``NoCapableAgent`` when no enabled agent of ``pool`` carries every label in
    ``demands`` — online or not: an offline capable agent may come back, so that job waits.
    """
    if kind not in KINDS:
        raise DomainError(f"unknown job kind {kind!r}; one of {', '.join(sorted(KINDS))}",
                          field="kind")
    try:
        pool_row = agent_store.get_pool(conn, pool)
    except NotFound:
        raise NoCapableAgent(f"agent pool '{pool}' does not exist", field="pool") from None
    policy = policy or agent_policy()
    counts = agent_store.capable_agents(conn, pool_row.id, demands, now - policy.offline_after)
    if counts["total"] == 0:
        if demands:
            detail = (f"no enabled agent in pool '{pool_row.name}' has labels "
                      f"{_labels_text(demands)}")
        else:
            detail = f"no enabled agent in pool '{pool_row.name}'"
        raise NoCapableAgent(detail, field="pool")
    return job_store.create_job(conn, task_id=task.id, pool_id=pool_row.id, kind=kind,
                                payload=payload, demands=demands,
                                max_attempts=MAX_ATTEMPTS[kind], job_id=job_id)


def waiting_reason(conn: Connection[Any], job: Job, *, now: datetime,
                   policy: AgentPolicy | None = None) -> str:
    """Why ``job`` is not running yet, in words for the task list (``now``: the
    injected clock's, against which heartbeats count as online)."""
    policy = policy or agent_policy()
    pool = agent_store.get_pool(conn, job.pool_id)
    counts = agent_store.capable_agents(conn, pool.id, list(job.demands),
                                        now - policy.offline_after)
    base = f"waiting for an agent in pool {pool.name} with labels {_labels_text(job.demands)}"
    if counts["total"] == 0:
        return f"{base}: no enabled agent can take it"
    if counts["online"] == 0:
        return f"{base}: none online ({counts['total']} capable, offline)"
    if counts["busy"] >= counts["online"]:
        n = counts["busy"]
        return f"{base}: {n} capable agent{'s' if n != 1 else ''} busy"
    idle = counts["online"] - counts["busy"]
    return f"{base}: {idle} capable agent{'s' if idle != 1 else ''} idle, picking it up"
