"""Per-environment FIFO: one task at a time holds an environment's lease.

Service Bus sessions deliver an environment's requests in order, but orchestrations run
concurrently, so Postgres referees: the environment row is locked while the lease is
decided, a task gets the lease only when no task that joined the queue earlier is still
open, and the holder hands it to the next one when it finishes. A task joins the queue
when it is accepted (``queue_seq``), or once approved if its operation is protected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.domain.models import Task
from shared.domain.task_states import TaskStatus
from shared.errors import NotFound
from shared.store import tasks as task_store


@dataclass(frozen=True)
class LeaseDecision:
    acquired: bool
    position: int  # open tasks ahead of this one; 0 when acquired
    behind: UUID | None
    reason: str


def _lock_environment(conn: Connection[Any], environment_id: UUID) -> None:
    conn.execute("SELECT 1 FROM environments WHERE id = %s FOR UPDATE", (environment_id,))


def _holder(conn: Connection[Any], environment_id: UUID) -> UUID | None:
    """The task holding the lease; a lease left by a finished task is cleared."""
    row = conn.execute(
        "SELECT l.task_id, t.status FROM environment_leases l JOIN tasks t ON t.id = l.task_id"
        " WHERE l.environment_id = %s", (environment_id,)).fetchone()
    if row is None:
        return None
    if TaskStatus(row["status"]).terminal:
        conn.execute("DELETE FROM environment_leases WHERE environment_id = %s",
                     (environment_id,))
        return None
    holder: UUID = row["task_id"]
    return holder


def _queue_reason(position: int, ahead: Task) -> str:
    return (f"position {position} in the environment queue, behind task "
            f"{str(ahead.id)[:8]} ({ahead.operation}, {ahead.status})")


def _queue(conn: Connection[Any], environment_id: UUID) -> list[Task]:
    """Open tasks that joined the environment's queue, in the order they joined."""
    rows = conn.execute(
        "SELECT * FROM tasks WHERE environment_id = %s AND queue_seq IS NOT NULL"
        " AND status IN ('queued', 'waiting', 'running') ORDER BY queue_seq",
        (environment_id,)).fetchall()
    return [Task.from_row(r) for r in rows]


def _lock_environment_of(conn: Connection[Any], task_id: UUID) -> UUID:
    """Lock the environment of the task (one read: a task never changes environment)."""
    row = conn.execute(
        "SELECT e.id FROM environments e JOIN tasks t ON t.environment_id = e.id"
        " WHERE t.id = %s FOR UPDATE OF e", (task_id,)).fetchone()
    if row is None:
        raise NotFound(f"task {task_id} not found", field="task")
    environment_id: UUID = row["id"]
    return environment_id


def acquire_environment(conn: Connection[Any], task_id: UUID) -> tuple[LeaseDecision, Task]:
    """Take the task's environment if it is its turn, else say where it waits; with the
    task as read under the environment's lock."""
    environment_id = _lock_environment_of(conn, task_id)
    holder = _holder(conn, environment_id)
    task = task_store.get_task(conn, task_id)  # its state and queue place, under the lock
    if holder == task.id:
        return LeaseDecision(True, 0, None, "holds the environment"), task
    if task.queue_seq is None:
        return LeaseDecision(False, 0, None, task.reason or "not in the queue yet"), task
    ahead = [t for t in _queue(conn, environment_id)
             if t.queue_seq is not None and t.queue_seq < task.queue_seq]
    if holder is None and not ahead:
        conn.execute("INSERT INTO environment_leases (environment_id, task_id) VALUES (%s, %s)",
                     (environment_id, task.id))
        return LeaseDecision(True, 0, None, "holds the environment"), task
    last = ahead[-1] if ahead else task_store.get_task(conn, holder)  # type: ignore[arg-type]  # set: returned above
    position = max(len(ahead), 1)
    return LeaseDecision(False, position, last.id, _queue_reason(position, last)), task


def release_environment(conn: Connection[Any], task: Task) -> tuple[UUID | None, list[Task]]:
    """Drop ``task``'s lease and grant it to the next open task in arrival order.

    Returns the task granted the lease (to wake its orchestration) and the tasks still
    waiting with their refreshed queue positions (to publish).
    """
    _lock_environment(conn, task.environment_id)
    conn.execute("DELETE FROM environment_leases WHERE environment_id = %s AND task_id = %s",
                 (task.environment_id, task.id))
    if _holder(conn, task.environment_id) is not None:
        return None, []
    waiting = [t for t in _queue(conn, task.environment_id) if t.id != task.id]
    if not waiting:
        return None, []
    granted = waiting[0]
    conn.execute("INSERT INTO environment_leases (environment_id, task_id) VALUES (%s, %s)",
                 (task.environment_id, granted.id))
    refreshed = []
    for position, queued in enumerate(waiting[1:], start=1):
        if queued.status == TaskStatus.WAITING:
            reason = _queue_reason(position, waiting[position - 1])
            if queued.reason != reason and (queued.reason or "").startswith("position"):
                refreshed.append(task_store.transition(
                    conn, queued.id, TaskStatus.WAITING, actor="system", reason=reason))
    return granted.id, refreshed
