"""Sandbox lifetime: warn before expiry, tear down expired sandboxes, extend the TTL.

Teardown goes through the task pipeline as a ``sandbox_delete`` task on the sandbox's
own environment (so it queues behind whatever runs there), requested by
``sandbox-expiry`` with the reason in its parameters and in the activity log. A sandbox
with a teardown already open is left alone; one whose teardown failed is retried after
``RETRY_FAILED_AFTER`` rather than every minute.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from shared.domain.models import Environment, Task
from shared.errors import ConstraintViolation
from shared.notify import notify_event, sandbox_expiring_event
from shared.services import Services
from shared.store import activity
from shared.store import projects as project_store
from shared.store import tasks as task_store
from shared.tasks import approvals
from shared.tasks.service import TaskService

log = logging.getLogger("cloudops.sandboxes")
ACTOR = "sandbox-expiry"
WARNING_ATTEMPTS = 5  # one per timer run
RETRY_FAILED_AFTER = timedelta(hours=1)


def warn_expiring(svc: Services, now: datetime | None = None) -> int:
    """Send ``sandbox.expiring`` for sandboxes expiring within the warning window (each
    expiry time once; extending the sandbox re-arms the warning)."""
    now = now or svc.clock.now()
    horizon = now + timedelta(minutes=svc.settings.sandbox_warn_minutes)
    with svc.db.transaction() as conn:
        pairs = project_store.sandboxes_expiring_between(conn, now, horizon)
    sent = 0
    for sandbox, project in pairs:
        event = sandbox_expiring_event(project, sandbox, now, svc.settings.public_url)
        try:
            sent += notify_event(svc, event, max_attempts=WARNING_ATTEMPTS).delivered
        except Exception:  # the next timer run tries again; others still get theirs
            log.exception("sandbox %s: expiry warning not delivered", sandbox.id)
    return sent


def submit_expired_teardowns(svc: Services, now: datetime | None = None) -> list[Task]:
    """One ``sandbox_delete`` task per expired sandbox that has none open."""
    now = now or svc.clock.now()
    with svc.db.transaction() as conn:
        expired = project_store.list_expired_sandboxes(conn, now)
    submitted = []
    for sandbox in expired:
        try:
            task = _submit_teardown(svc, sandbox, now)
        except Exception:  # retried on the next timer run
            log.exception("sandbox %s: teardown not submitted", sandbox.id)
            continue
        if task is not None:
            submitted.append(task)
    return submitted


def _submit_teardown(svc: Services, sandbox: Environment, now: datetime) -> Task | None:
    tasks = TaskService(svc)
    with svc.db.transaction() as conn:
        # the row lock makes two hosts' timers take turns; the second sees the open task
        if not project_store.lock_expired_sandbox(conn, sandbox.id, now):
            return None  # extended or deleted meanwhile
        if task_store.teardown_in_hand(
                conn, sandbox.id, requested_by=ACTOR,
                retry_failed_after_seconds=int(RETRY_FAILED_AFTER.total_seconds())):
            return None
        project = project_store.get_project(conn, sandbox.project_id)
        reason = f"expired at {sandbox.expires_at.isoformat() if sandbox.expires_at else '?'}"
        task, _ = tasks.record(conn, project=project, environment=sandbox,
                               operation="sandbox_delete",
                               parameters={"reason": reason, "name": sandbox.slug},
                               actor=ACTOR)
        # expiry is policy agreed when the sandbox was made: no approval round
        task = approvals.hold_for_approval(conn, task, sandbox, pre_approved_by=ACTOR)
        activity.record(conn, actor=ACTOR, action="sandbox.expired", project_id=project.id,
                        environment_id=sandbox.id, task_id=task.id,
                        details={"sandbox": sandbox.slug, "reason": reason})
    tasks.announce(task)
    log.info("sandbox %s expired: teardown task %s", sandbox.slug, task.id)
    return task


def extend(conn: Any, sandbox: Environment, hours: int, *, actor: str, now: datetime,
           max_ttl_hours: int) -> Environment:
    """Push the expiry ``hours`` later; the total lifetime stays within the maximum.

    The expiry is business time (``now`` is the injected clock's); the lifetime so far
    is the database's to measure, from the ``created_at`` it stamped. Each clock measures
    its own duration and only durations meet: the limit is ``now`` plus what
    ``lifetime_left`` says remains."""
    if sandbox.kind != "sandbox" or sandbox.expires_at is None:
        raise ConstraintViolation(f"{sandbox.slug} is not a sandbox; only sandboxes expire",
                                  field="environment")
    new_expiry = max(sandbox.expires_at, now) + timedelta(hours=hours)
    limit = now + project_store.lifetime_left(conn, sandbox.id, max_ttl_hours)
    if new_expiry > limit:
        raise ConstraintViolation(
            f"a sandbox lives at most {max_ttl_hours} hours; it can be extended until "
            f"{limit.isoformat()}", field="hours")
    project_store.set_expiry(conn, sandbox.id, new_expiry)
    activity.record(conn, actor=actor, action="sandbox.extended",
                    project_id=sandbox.project_id, environment_id=sandbox.id,
                    details={"hours": hours, "from": sandbox.expires_at.isoformat(),
                             "to": new_expiry.isoformat()})
    return project_store.get_environment_by_id(conn, sandbox.id)
