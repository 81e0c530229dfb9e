"""Public JSON shapes (camelCase) of pools, agents and jobs. Never a key or a hash."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.api.views import iso
from shared.domain.models import Agent, AgentPool, Job


def agent_status(agent: Agent, now: datetime, offline_after: timedelta) -> str:
    """revoked | disabled | online | offline (by the last heartbeat, not only the flag,
    so a read between two reaper runs is already right)."""
    if agent.revoked_at is not None:
        return "revoked"
    if not agent.enabled:
        return "disabled"
    beat = agent.last_heartbeat_at
    return "online" if beat is not None and now - beat <= offline_after else "offline"


def pool_json(pool: AgentPool, agents: list[Agent] | None = None, *,
              now: datetime | None = None,
              offline_after: timedelta | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(pool.id), "name": pool.name,
                           "description": pool.description,
                           "createdAt": iso(pool.created_at)}
    if agents is not None and now is not None and offline_after is not None:
        statuses = [agent_status(a, now, offline_after) for a in agents]
        out["agentCount"] = len(agents)
        out["onlineCount"] = statuses.count("online")
    return out


def agent_json(agent: Agent, *, pool_name: str, now: datetime,
               offline_after: timedelta) -> dict[str, Any]:
    return {
        "id": str(agent.id),
        "name": agent.name,
        "pool": pool_name,
        "poolId": str(agent.pool_id),
        "labels": list(agent.labels),
        "status": agent_status(agent, now, offline_after),
        "enabled": agent.enabled,
        "version": agent.version,
        "os": agent.os,
        "capacity": agent.capacity,
        "lastHeartbeatAt": iso(agent.last_heartbeat_at),
        "keyExpiresAt": iso(agent.key_expires_at),
        "keyRotatedAt": iso(agent.key_rotated_at),
        "revokedAt": iso(agent.revoked_at),
        "createdAt": iso(agent.created_at),
    }


def job_for_agent(job: Job, *, heartbeat_seconds: float,
                  lease_seconds: float | None = None) -> dict[str, Any]:
    """What the agent receives from the long poll: everything it needs to run the job,
    and how long its lease lasts unrenewed (the agent freezes the job after that)."""
    return {
        "id": str(job.id),
        "taskId": str(job.task_id),
        "kind": job.kind,
        "payload": job.payload,
        "attempt": job.attempts,
        "leaseExpiresAt": iso(job.lease_expires_at),
        "heartbeatIntervalSeconds": heartbeat_seconds,
        **({"leaseSeconds": lease_seconds} if lease_seconds is not None else {}),
    }


def job_event(job: Job) -> dict[str, Any]:
    """The data of the durable external event ``job:<id>`` that wakes the orchestration."""
    return {"jobId": str(job.id), "status": job.status, "result": job.result,
            "error": job.error}
