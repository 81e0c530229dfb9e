"""Tasks and their lifecycle. Every status change is one transaction with its audit row."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypedDict
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.auth.principal import display_name
from shared.domain.models import Task
from shared.domain.task_states import OPEN, TaskStatus, sources_of
from shared.errors import ConstraintViolation, NotFound
from shared.redact import mask, redact_json, redact_text, secret_values
from shared.store import activity
from shared.store._transitions import moved


class IdempotencyKeyReused(ConstraintViolation):
    """The caller's key already named a different request (payment-API semantics)."""

    title = "Idempotency-Key reused"


def request_fingerprint(operation: str, environment_id: UUID, request: dict[str, Any]) -> str:
    """A digest of what a request asked: operation, environment, route details and body
    (key order and whitespace do not matter)."""
    material = json.dumps({"operation": operation, "environment": str(environment_id),
                           "request": request}, sort_keys=True, separators=(",", ":"),
                          default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def replay_by_key(conn: Connection[Any], *, requested_by: str, idempotency_key: str | None,
                  operation: str, environment_id: UUID, fingerprint: str) -> Task | None:
    """The task this caller already started with ``idempotency_key`` for this very
    request, or ``None`` if the key is new; ``IdempotencyKeyReused`` if the key was used
    for a different request."""
    if idempotency_key is None:
        return None
    row = conn.execute(
        "SELECT * FROM tasks WHERE requested_by = %s AND idempotency_key = %s",
        (requested_by, idempotency_key),
    ).fetchone()
    if row is None:
        return None
    existing = Task.from_row(row)
    stored = row.get("request_fingerprint")
    same = (stored == fingerprint if stored is not None else
            (existing.operation, existing.environment_id) == (operation, environment_id))
    if not same:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {idempotency_key!r} was already used for a different request "
            f"({existing.operation.replace('_', ' ')} task {existing.id}); send a new key "
            "for a new request, or the same request to get that task back",
            field="Idempotency-Key")
    return existing


def create_task(conn: Connection[Any], *, project_id: UUID, environment_id: UUID,
                operation: str, parameters: dict[str, Any], requested_by: str,
                idempotency_key: str | None = None,
                plan: dict[str, Any] | None = None,
                secrets: dict[str, Any] | None = None,
                fingerprint: str | None = None) -> tuple[Task, bool]:
    """Record a queued task (with the plan it was requested with; ``secrets`` kept apart
    from the parameters). With an idempotency key already used by this caller for the
    same request, return the existing task and ``False`` instead of creating a second
    one; for a different request, raise ``IdempotencyKeyReused``. ``fingerprint`` names
    the request (default: operation, environment and parameters)."""
    fingerprint = fingerprint or request_fingerprint(operation, environment_id, parameters)
    existing = replay_by_key(conn, requested_by=requested_by, idempotency_key=idempotency_key,
                             operation=operation, environment_id=environment_id,
                             fingerprint=fingerprint)
    if existing is not None:
        return existing, False
    # the task and its "task.created" audit row in one statement
    row = conn.execute(
        "WITH t AS (INSERT INTO tasks (project_id, environment_id, operation, parameters,"
        " requested_by, requested_by_name, idempotency_key, request_fingerprint, secrets,"
        " reason, enqueue_attempts, last_enqueued_at, plan) VALUES (%(project)s,"
        " %(environment)s, %(operation)s, %(parameters)s, %(actor)s, %(actor_name)s,"
        " %(key)s, %(fingerprint)s, %(secrets)s, 'accepted, waiting to be picked up', 1,"
        " now(), %(plan)s)"
        " ON CONFLICT ON CONSTRAINT tasks_idempotency_key DO NOTHING RETURNING *),"
        " audit AS (INSERT INTO activity_log (actor, actor_name, action, project_id,"
        " environment_id, task_id, details) SELECT %(actor)s, %(actor_name)s, 'task.created',"
        " t.project_id, t.environment_id, t.id, %(details)s FROM t)"
        " SELECT * FROM t",
        {"project": project_id, "environment": environment_id, "operation": operation,
         "parameters": Jsonb(parameters), "actor": requested_by,
         "actor_name": display_name(requested_by), "key": idempotency_key,
         "fingerprint": fingerprint, "secrets": Jsonb(secrets) if secrets else None,
         "plan": Jsonb(plan) if plan is not None else None,
         "details": Jsonb(redact_json({"operation": operation}))},
    ).fetchone()
    if row is None:  # a concurrent request with the same key committed first
        existing = replay_by_key(conn, requested_by=requested_by,
                                 idempotency_key=idempotency_key, operation=operation,
                                 environment_id=environment_id, fingerprint=fingerprint)
        assert existing is not None
        return existing, False
    return Task.from_row(row), True


def get_task(conn: Connection[Any], task_id: UUID | str, *, for_update: bool = False) -> Task:
    lock = " FOR UPDATE" if for_update else ""
    try:
        row = conn.execute(f"SELECT * FROM tasks WHERE id = %s{lock}",
                           (UUID(str(task_id)),)).fetchone()
    except ValueError:
        row = None
    if row is None:
        raise NotFound(f"task {task_id} not found", field="task")
    return Task.from_row(row)


def list_tasks(conn: Connection[Any], *, project_ids: list[UUID] | None = None,
               environment_id: UUID | None = None, statuses: list[str] | None = None,
               before_seq: int | None = None, limit: int = 50) -> list[Task]:
    """Newest first; ``before_seq`` is the cursor (exclusive)."""
    rows = conn.execute(
        "SELECT * FROM tasks WHERE (%(p)s::uuid[] IS NULL OR project_id = ANY(%(p)s))"
        " AND (%(e)s::uuid IS NULL OR environment_id = %(e)s)"
        " AND (%(s)s::text[] IS NULL OR status = ANY(%(s)s))"
        " AND (%(b)s::bigint IS NULL OR seq < %(b)s)"
        " ORDER BY seq DESC LIMIT %(n)s",
        {"p": project_ids, "e": environment_id, "s": statuses, "b": before_seq, "n": limit},
    ).fetchall()
    return [Task.from_row(r) for r in rows]


def transition(conn: Connection[Any], task_id: UUID, to: TaskStatus, *, actor: str,
               reason: str | None = None, error: str | None = None,
               result: dict[str, Any] | None = None, progress: int | None = None) -> Task:
    """Move a task to ``to`` if its current state allows it, else raise InvalidTransition.

    The row is locked, then checked and written in one statement, so of two sessions
    racing to move one task, exactly one wins: the loser waits for the lock, sees the
    winner's status and matches nothing.
    """
    if conn.autocommit:  # the texts are masked of the task's secrets after the write
        raise RuntimeError("task transitions run inside a transaction (Database.transaction)")
    terminal = to.terminal
    # URL keys go before the write; the task's secret values (its row has them) right
    # after, in the same transaction, only for a task that has any: no read first
    if error is not None:
        error = redact_text(error)
    if reason is not None:
        reason = redact_text(reason)
    # The audit row goes in with the change (one statement) unless the task has secret
    # values to mask from the texts first: then it is recorded below, masked.
    row = conn.execute(
        "WITH prev AS (SELECT id, status FROM tasks WHERE id = %(id)s FOR UPDATE),"
        " upd AS (UPDATE tasks t SET status = %(to)s, reason = %(reason)s,"
        " error = COALESCE(%(error)s, t.error),"
        " result = COALESCE(%(result)s, t.result),"
        " progress = CASE WHEN %(to)s = 'succeeded' THEN 100"
        "                 ELSE COALESCE(%(progress)s, t.progress) END,"
        " started_at = CASE WHEN %(to)s = 'running' THEN COALESCE(t.started_at, clock_timestamp())"
        "                   ELSE t.started_at END,"
        " finished_at = CASE WHEN %(terminal)s THEN clock_timestamp() ELSE NULL END,"
        " updated_at = now()"
        " FROM prev WHERE t.id = prev.id AND prev.status = ANY(%(from)s)"
        " RETURNING t.*, prev.status AS previous_status),"
        " audit AS (INSERT INTO activity_log (actor, actor_name, action, project_id,"
        " environment_id, task_id, details)"
        " SELECT %(actor)s, %(actor_name)s, %(action)s, upd.project_id, upd.environment_id,"
        " upd.id, jsonb_build_object('from', upd.previous_status) || %(details)s"
        " FROM upd WHERE upd.previous_status <> %(to)s"
        " AND (upd.secrets IS NULL OR upd.secrets = '{}'::jsonb) RETURNING 1)"
        " SELECT upd.*, EXISTS (SELECT 1 FROM audit) AS audited FROM upd",
        {"to": to.value, "reason": reason, "error": error,
         "result": Jsonb(result) if result is not None else None, "progress": progress,
         "terminal": terminal, "id": task_id, "from": sources_of(to),
         "actor": actor, "actor_name": display_name(actor), "action": f"task.{to.value}",
         "details": Jsonb(redact_json({"reason": reason, "error": error}))},
    ).fetchone()
    row = moved(row, what=f"task {task_id}", status_now=lambda: get_task(conn, task_id).status,
                refusal=f"it cannot become {to.value}")
    reason, error, row = _mask_secrets(conn, row, reason, error)
    task = Task.from_row(row)
    if row["previous_status"] != to.value and not row["audited"]:
        activity.record(
            conn, actor=actor, action=f"task.{to.value}", project_id=task.project_id,
            environment_id=task.environment_id, task_id=task.id,
            details={"from": row["previous_status"], "reason": reason, "error": error})
    return task


def _mask_secrets(conn: Connection[Any], row: dict[str, Any], reason: str | None,
                  error: str | None) -> tuple[str | None, str | None, dict[str, Any]]:
    """The written ``reason``/``error`` without the task's secret values (errors quote
    argv), rewritten before the transaction commits when they showed any."""
    hidden = secret_values(row.get("secrets"))
    if not hidden or (reason is None and error is None):
        return reason, error, row
    masked_reason = None if reason is None else mask(reason, hidden)
    masked_error = None if error is None else mask(error, hidden)
    if masked_reason == reason and masked_error == error:
        return reason, error, row
    conn.execute("UPDATE tasks SET reason = %s, error = COALESCE(%s, error) WHERE id = %s",
                 (masked_reason, masked_error, row["id"]))
    changed = {"reason": masked_reason}
    if masked_error is not None:
        changed["error"] = masked_error
    return masked_reason, masked_error, {**row, **changed}


def set_progress(conn: Connection[Any], task_id: UUID, progress: int,
                 reason: str | None = None) -> Task:
    """Update progress (and optionally the reason) of a running task; not a transition."""
    row = conn.execute(
        "UPDATE tasks SET progress = GREATEST(progress, %s), reason = COALESCE(%s, reason),"
        " updated_at = now() WHERE id = %s AND status = 'running' RETURNING *",
        (progress, reason, task_id),
    ).fetchone()
    return Task.from_row(moved(row, what=f"task {task_id}",
                               status_now=lambda: get_task(conn, task_id).status,
                               refusal="progress needs running"))


def open_tasks_for_environment(conn: Connection[Any], environment_id: UUID) -> list[Task]:
    rows = conn.execute(
        "SELECT * FROM tasks WHERE environment_id = %s AND status = ANY(%s) ORDER BY seq",
        (environment_id, sorted(OPEN)),
    ).fetchall()
    return [Task.from_row(r) for r in rows]


def last_deployed_version(conn: Connection[Any], environment_id: UUID) -> str | None:
    """The version of the environment's latest successful deployment, if any."""
    row = conn.execute(
        "SELECT parameters->>'version' AS version FROM tasks WHERE environment_id = %s"
        " AND operation = 'deploy' AND status = 'succeeded'"
        " ORDER BY finished_at DESC NULLS LAST, created_at DESC LIMIT 1",
        (environment_id,)).fetchone()
    return None if row is None else row["version"]


def open_task_ids_for_environment(conn: Connection[Any], environment_id: UUID | str,
                                  ) -> list[str]:
    """Tasks of the environment not yet running: queued, or waiting (held or approving)."""
    rows = conn.execute("SELECT id FROM tasks WHERE environment_id = %s AND status IN"
                        " ('queued', 'waiting')", (environment_id,)).fetchall()
    return [str(r["id"]) for r in rows]


def open_task_using_backup(conn: Connection[Any], backup_id: UUID) -> dict[str, Any] | None:
    """The oldest open task whose parameters name the backup (its id and operation)."""
    return conn.execute(
        "SELECT id, operation FROM tasks WHERE parameters->>'backupId' = %s AND status IN"
        " ('queued', 'waiting', 'running') ORDER BY seq LIMIT 1",
        (str(backup_id),)).fetchone()


class QueueState(TypedDict):
    """What decides a task's next move (``task_with_queue_state``)."""

    status: str
    cancel_requested: bool
    approval: dict[str, Any] | None  # the approval snapshot (``state``, ``by``, ...)
    queue_seq: int | None  # its place in the environment's queue, once it has one


def task_with_queue_state(conn: Connection[Any], task_id: UUID
                          ) -> tuple[Task, QueueState] | None:
    """The task and what decides its next move (status, cancel request, approval, queue
    place), from one read of its row; None: no such task."""
    row = conn.execute("SELECT * FROM tasks WHERE id = %s", (task_id,)).fetchone()
    if row is None:
        return None
    return Task.from_row(row), QueueState(
        status=row["status"], cancel_requested=row["cancel_requested"],
        approval=row["approval"], queue_seq=row["queue_seq"])


def move_tasks(conn: Connection[Any], from_environment: UUID, to_environment: UUID) -> None:
    conn.execute("UPDATE tasks SET environment_id = %s WHERE environment_id = %s",
                 (to_environment, from_environment))


def stale_started_task_ids(conn: Connection[Any], *, unchanged_for_seconds: int,
                           limit: int) -> list[str]:
    """Tasks past the queue (waiting or running) unchanged for a while, by database time:
    ``updated_at`` is written with the database's ``now()``, so it is compared with it."""
    rows = conn.execute(
        "SELECT id FROM tasks WHERE status IN ('waiting', 'running')"
        " AND updated_at < now() - make_interval(secs => %s) ORDER BY seq LIMIT %s",
        (unchanged_for_seconds, limit)).fetchall()
    return [str(r["id"]) for r in rows]


def count_enqueue(conn: Connection[Any], task_id: UUID) -> None:
    """One more send of the task's message, at the database's time."""
    conn.execute("UPDATE tasks SET enqueue_attempts = enqueue_attempts + 1,"
                 " last_enqueued_at = now() WHERE id = %s", (task_id,))


def unpicked_queued_tasks(conn: Connection[Any], *, older_than_seconds: int,
                          limit: int) -> list[tuple[Task, int]]:
    """Queued tasks last sent (or created) longer ago than that, with their send count.

    Both ``last_enqueued_at`` and ``created_at`` are written with the database's
    ``now()``, so they are compared with it, never with the application's clock."""
    rows = conn.execute(
        "SELECT * FROM tasks WHERE status = 'queued' AND COALESCE(last_enqueued_at,"
        " created_at) < now() - make_interval(secs => %s) ORDER BY seq LIMIT %s",
        (older_than_seconds, limit)).fetchall()
    return [(Task.from_row(r), r["enqueue_attempts"]) for r in rows]


def request_cancel(conn: Connection[Any], task_id: UUID) -> None:
    conn.execute("UPDATE tasks SET cancel_requested = true WHERE id = %s", (task_id,))


def cancel_state(conn: Connection[Any], task_id: UUID) -> tuple[str, bool] | None:
    """(status, cancel requested), or None for no such task."""
    row = conn.execute("SELECT status, cancel_requested FROM tasks WHERE id = %s",
                       (task_id,)).fetchone()
    return None if row is None else (row["status"], row["cancel_requested"])


def teardown_in_hand(conn: Connection[Any], sandbox_id: UUID, *, requested_by: str,
                     retry_failed_after_seconds: int) -> bool:
    """Whether the sandbox has an open teardown, or one by ``requested_by`` that ended
    less than that long ago. ``finished_at`` is the database's time, so "ago" is too."""
    return conn.execute(
        "SELECT 1 FROM tasks WHERE environment_id = %s AND operation = 'sandbox_delete'"
        " AND (status IN ('queued', 'waiting', 'running')"
        "      OR (requested_by = %s"
        "          AND finished_at > now() - make_interval(secs => %s)))",
        (sandbox_id, requested_by, retry_failed_after_seconds)).fetchone() is not None
