"""Agent work items. A job is leased to one agent at a time; leases expire."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection
from psycopg.types.json import Jsonb

from shared.domain.models import Job
from shared.errors import DomainError, NotFound
from shared.store._transitions import moved

NOTIFY_CHANNEL = "cloudops_jobs"


def create_job(conn: Connection[Any], *, task_id: UUID, pool_id: UUID, kind: str,
               payload: dict[str, Any], demands: list[str], max_attempts: int = 1,
               job_id: UUID | None = None) -> tuple[Job, bool]:
    """Insert the job (and wake the pool's agents on commit); ``(job, created)``.

    ``job_id`` chosen by the caller makes the insert idempotent: an activity run again
    after a crash (Durable runs activities at least once) finds the job its first run
    created — ``created`` is False — instead of queueing the same work twice.
    """
    row = conn.execute(
        "INSERT INTO jobs (id, task_id, pool_id, kind, payload, demands, max_attempts)"
        " VALUES (COALESCE(%s::uuid, gen_random_uuid()), %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING RETURNING *",
        (job_id, task_id, pool_id, kind, Jsonb(payload), sorted(set(demands)), max_attempts)
    ).fetchone()
    if row is None:
        assert job_id is not None
        existing = get_job(conn, job_id)
        if existing.task_id != task_id:
            raise DomainError(f"job {job_id} belongs to another task", field="jobId")
        return existing, False
    job = Job.from_row(row)
    notify_pending(conn, job)
    return job, True


def notify_pending(conn: Connection[Any], job: Job) -> None:
    """Wake long-polling agents of the job's pool once the transaction commits.

    The payload carries the pool and demands, so a listener wakes only a waiter that
    can take the job instead of every idle agent.
    """
    payload = json.dumps({"pool": str(job.pool_id), "demands": list(job.demands),
                          "job": str(job.id)})
    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))


def get_job(conn: Connection[Any], job_id: UUID) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found", field="job")
    return Job.from_row(row)


def claim_next_job(conn: Connection[Any], *, agent_id: UUID, pool_id: UUID,
                   labels: list[str], now: datetime, lease: timedelta,
                   capacity: int = 1) -> Job | None:
    """Lease the oldest pending job of the pool whose demands the agent's labels cover,
    unless the agent already holds ``capacity`` leased jobs.

    ``FOR UPDATE SKIP LOCKED`` lets many agents claim at once without waiting on each other.
    """
    row = conn.execute(
        "UPDATE jobs SET status = 'leased', agent_id = %(agent)s, attempts = attempts + 1,"
        " claimed_at = %(now)s, renewed_at = %(now)s, lease_expires_at = %(until)s,"
        " cancel_requested = false, cancel_requested_by = NULL"
        " WHERE id = (SELECT id FROM jobs WHERE status = 'pending' AND pool_id = %(pool)s"
        "   AND NOT cancel_requested AND demands <@ %(labels)s::text[]"
        "   AND (SELECT count(*) FROM jobs h WHERE h.agent_id = %(agent)s"
        "        AND h.status = 'leased') < %(capacity)s"
        "   ORDER BY seq FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING *",
        {"agent": agent_id, "now": now, "until": now + lease, "pool": pool_id,
         "labels": list(labels), "capacity": capacity},
    ).fetchone()
    return None if row is None else Job.from_row(row)


def renew_leases(conn: Connection[Any], agent_id: UUID, job_ids: list[UUID],
                 now: datetime, lease: timedelta) -> list[Job]:
    """Renew the leases of the listed jobs the agent holds (and only those: a job the
    agent no longer names in its heartbeat is not kept alive by it)."""
    rows = conn.execute(
        "UPDATE jobs SET lease_expires_at = %s, renewed_at = %s WHERE agent_id = %s"
        " AND status = 'leased' AND id = ANY(%s::uuid[]) RETURNING *",
        (now + lease, now, agent_id, job_ids)).fetchall()
    return [Job.from_row(r) for r in rows]


def unclaim_job(conn: Connection[Any], job_id: UUID, agent_id: UUID) -> Job | None:
    """Undo a claim whose answer never reached the agent: the job is pending again and
    the attempt does not count (nothing ran). None if it is no longer that claim."""
    row = conn.execute(
        "UPDATE jobs SET status = 'pending', agent_id = NULL, lease_expires_at = NULL,"
        " claimed_at = NULL, renewed_at = NULL, progress = NULL,"
        " attempts = GREATEST(attempts - 1, 0)"
        " WHERE id = %s AND agent_id = %s AND status = 'leased' RETURNING *",
        (job_id, agent_id)).fetchone()
    return None if row is None else Job.from_row(row)


def extend_leases(conn: Connection[Any], by: timedelta) -> int:
    """Push every lease back by ``by`` (the control plane was away that long, so no
    agent could renew); how many leases moved."""
    return conn.execute("UPDATE jobs SET lease_expires_at = lease_expires_at + %s"
                        " WHERE status = 'leased'", (by,)).rowcount


def record_reaper_run(conn: Connection[Any], now: datetime) -> datetime | None:
    """Note that the lease reaper runs now; when it last ran (None: never)."""
    conn.execute("INSERT INTO agent_reaper_runs (id, last_run_at) VALUES (1, %s)"
                 " ON CONFLICT (id) DO NOTHING", (now,))
    row = conn.execute("SELECT last_run_at FROM agent_reaper_runs WHERE id = 1 FOR UPDATE"
                       ).fetchone()
    previous = None if row is None else row["last_run_at"]
    conn.execute("UPDATE agent_reaper_runs SET last_run_at = GREATEST(last_run_at, %s)"
                 " WHERE id = 1", (now,))
    return None if previous == now else previous


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
    return Job.from_row(moved(row, what=f"job {job_id}",
                              status_now=lambda: get_job(conn, job_id).status,
                              refusal=f"it cannot become {status}"))


def leased_jobs(conn: Connection[Any], agent_id: UUID) -> list[Job]:
    rows = conn.execute("SELECT * FROM jobs WHERE agent_id = %s AND status = 'leased'"
                        " ORDER BY seq", (agent_id,)).fetchall()
    return [Job.from_row(r) for r in rows]


def repend_job(conn: Connection[Any], job_id: UUID) -> Job:
    """Hand a leased job back to the pool (its agent vanished and the kind is safe to
    repeat); the caller notifies listeners."""
    row = conn.execute(
        "UPDATE jobs SET status = 'pending', agent_id = NULL, lease_expires_at = NULL,"
        " claimed_at = NULL, progress = NULL WHERE id = %s AND status = 'leased' RETURNING *",
        (job_id,)).fetchone()
    return Job.from_row(moved(row, what=f"job {job_id}",
                              status_now=lambda: get_job(conn, job_id).status,
                              refusal="it cannot be re-pended"))


def set_job_progress(conn: Connection[Any], job_id: UUID, progress: int) -> None:
    conn.execute("UPDATE jobs SET progress = GREATEST(COALESCE(progress, 0), %s)"
                 " WHERE id = %s", (progress, job_id))


def undelivered_events(conn: Connection[Any], *, finished_before: datetime,
                       max_attempts: int, limit: int = 100) -> list[Job]:
    """Finished jobs whose orchestration has not been told yet (the event outbox)."""
    rows = conn.execute(
        "SELECT * FROM jobs WHERE finished_at IS NOT NULL AND event_delivered_at IS NULL"
        " AND finished_at < %s AND event_attempts < %s ORDER BY finished_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED", (finished_before, max_attempts, limit)).fetchall()
    return [Job.from_row(r) for r in rows]


def mark_event(conn: Connection[Any], job_id: UUID, *, delivered_at: datetime | None) -> None:
    """Record one delivery attempt of the job's external event (and its success)."""
    conn.execute("UPDATE jobs SET event_attempts = event_attempts + 1,"
                 " event_delivered_at = %s WHERE id = %s", (delivered_at, job_id))


def cancelled_pending(conn: Connection[Any]) -> list[Job]:
    rows = conn.execute("SELECT * FROM jobs WHERE status = 'pending' AND cancel_requested"
                        " FOR UPDATE SKIP LOCKED").fetchall()
    return [Job.from_row(r) for r in rows]


def expired_leases(conn: Connection[Any], now: datetime) -> list[Job]:
    rows = conn.execute(
        "SELECT * FROM jobs WHERE status = 'leased' AND lease_expires_at < %s"
        " FOR UPDATE SKIP LOCKED", (now,)).fetchall()
    return [Job.from_row(r) for r in rows]


def request_cancel(conn: Connection[Any], task_id: UUID, by: str | None = None) -> list[Job]:
    """Flag the task's open jobs for cancel, remembering who asked first."""
    rows = conn.execute(
        "UPDATE jobs SET cancel_requested = true,"
        " cancel_requested_by = COALESCE(cancel_requested_by, %s) WHERE task_id = %s"
        " AND status IN ('pending', 'leased') RETURNING *", (by, task_id)).fetchall()
    return [Job.from_row(r) for r in rows]


def has_leased_job(conn: Connection[Any], task_id: UUID) -> bool:
    return conn.execute("SELECT 1 FROM jobs WHERE task_id = %s AND status = 'leased'",
                        (task_id,)).fetchone() is not None


async def listen_for_jobs(conn: AsyncConnection[Any]) -> None:
    """Subscribe an autocommit connection to the jobs channel (``notify_job``)."""
    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")


def lease_every_job_until(conn: Connection[Any], until: datetime) -> None:
    """Every leased job keeps its lease until at least ``until``."""
    conn.execute("UPDATE jobs SET lease_expires_at = GREATEST(lease_expires_at, %s)"
                 " WHERE status = 'leased'", (until,))
