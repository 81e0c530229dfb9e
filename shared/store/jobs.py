"""Agent work items. A job is leased to one agent at a time; leases expire."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.domain.models import Job
from shared.errors import InvalidTransition, NotFound

NOTIFY_CHANNEL = "cloudops_jobs"


def create_job(conn: Connection[Any], *, task_id: UUID, pool_id: UUID, kind: str,
               payload: dict[str, Any], demands: list[str]) -> Job:
    row = conn.execute(
        "INSERT INTO jobs (task_id, pool_id, kind, payload, demands) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING *", (task_id, pool_id, kind, Jsonb(payload), sorted(set(demands)))
    ).fetchone()
    assert row is not None
    # Wake long-polling agents of this pool once the transaction commits.
    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(pool_id)))
    return Job.from_row(row)


def get_job(conn: Connection[Any], job_id: UUID) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found", field="job")
    return Job.from_row(row)


def claim_next_job(conn: Connection[Any], *, agent_id: UUID, pool_id: UUID,
                   labels: list[str], now: datetime, lease: timedelta) -> Job | None:
    """Lease the oldest pending job of the pool whose demands the agent's labels cover.

    ``FOR UPDATE SKIP LOCKED`` lets many agents claim at once without waiting on each other.
    """
    row = conn.execute(
        "UPDATE jobs SET status = 'leased', agent_id = %(agent)s, attempts = attempts + 1,"
        " claimed_at = %(now)s, lease_expires_at = %(until)s"
        " WHERE id = (SELECT id FROM jobs WHERE status = 'pending' AND pool_id = %(pool)s"
        "   AND demands <@ %(labels)s::text[] ORDER BY seq FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING *",
        {"agent": agent_id, "now": now, "until": now + lease, "pool": pool_id,
         "labels": labels},
    ).fetchone()
    return None if row is None else Job.from_row(row)


def renew_leases(conn: Connection[Any], agent_id: UUID, now: datetime,
                 lease: timedelta) -> list[Job]:
    rows = conn.execute(
        "UPDATE jobs SET lease_expires_at = %s WHERE agent_id = %s AND status = 'leased'"
        " RETURNING *", (now + lease, agent_id)).fetchall()
    return [Job.from_row(r) for r in rows]


def finish_job(conn: Connection[Any], job_id: UUID, *, agent_id: UUID | None, status: str,
               result: dict[str, Any] | None = None, error: str | None = None,
               now: datetime) -> Job:
    """Record a terminal job status; only the leasing agent (or the system) may."""
    row = conn.execute(
        "UPDATE jobs SET status = %s, result = %s, error = %s, finished_at = %s,"
        " lease_expires_at = NULL WHERE id = %s AND status IN ('pending', 'leased')"
        " AND (%s::uuid IS NULL OR agent_id = %s) RETURNING *",
        (status, Jsonb(result) if result is not None else None, error, now, job_id,
         agent_id, agent_id)).fetchone()
    if row is None:
        job = get_job(conn, job_id)
        raise InvalidTransition(f"job {job_id} is {job.status}; it cannot become {status}",
                                field="status")
    return Job.from_row(row)


def expired_leases(conn: Connection[Any], now: datetime) -> list[Job]:
    rows = conn.execute(
        "SELECT * FROM jobs WHERE status = 'leased' AND lease_expires_at < %s"
        " FOR UPDATE SKIP LOCKED", (now,)).fetchall()
    return [Job.from_row(r) for r in rows]


def request_cancel(conn: Connection[Any], task_id: UUID) -> list[Job]:
    rows = conn.execute(
        "UPDATE jobs SET cancel_requested = true WHERE task_id = %s"
        " AND status IN ('pending', 'leased') RETURNING *", (task_id,)).fetchall()
    return [Job.from_row(r) for r in rows]
