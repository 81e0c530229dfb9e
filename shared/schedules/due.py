"""Which backup schedules are due, and firing each due slot exactly once.

A schedule's slot is *due* when the latest slot at or before now is later than the slot
it last fired (or its creation). After downtime that is simply the most recent slot, so
a three-hour outage of an hourly schedule gives one catch-up backup, not three.

Firing claims the ``(schedule_id, slot_at)`` row and records the backup task in the same
transaction; a second host racing for the same slot blocks on the row, then finds it
taken and does nothing. The task's message is sent after commit (``TaskService``), and
the task's idempotency key names the slot as a second guard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.domain.models import BackupSchedule, Task
from shared.services import Services
from shared.store import activity
from shared.store import backups as backup_store
from shared.store import projects as project_store
from shared.tasks import approvals, freezes
from shared.tasks.service import TaskService

from .cron import Cron, CronError, latest_slot, zone

log = logging.getLogger("cloudops.schedules")
ACTOR = "scheduler"


@dataclass(frozen=True)
class Fired:
    schedule_id: UUID
    slot_at: datetime
    task_id: UUID


def due_slot(schedule: BackupSchedule, now: datetime) -> datetime | None:
    """The slot to fire now, or None. Invalid stored expressions are never due."""
    try:
        slot = latest_slot(Cron.parse(schedule.cron), zone(schedule.timezone), now)
    except CronError:
        return None
    anchor = schedule.last_slot_at or schedule.created_at
    if slot is None or slot <= anchor:
        return None
    return slot


def fire_due_schedules(svc: Services, now: datetime | None = None) -> list[Fired]:
    """Submit one backup task per due slot of every enabled schedule."""
    now = now or svc.clock.now()
    with svc.db.transaction() as conn:
        schedules = backup_store.list_schedules(conn, enabled_only=True)
    fired: list[Fired] = []
    for schedule in schedules:
        slot = due_slot(schedule, now)
        if slot is None:
            continue
        try:
            task = _fire(svc, schedule, slot)
        except Exception:  # one broken schedule must not starve the others
            log.exception("schedule %s: slot %s not fired", schedule.id, slot)
            continue
        if task is not None:
            fired.append(Fired(schedule.id, slot, task.id))
    return fired


def _fire(svc: Services, schedule: BackupSchedule, slot: datetime) -> Task | None:
    tasks = TaskService(svc)
    with svc.db.transaction() as conn:
        if not backup_store.claim_slot(conn, schedule.id, slot):
            return None  # another host fired this slot
        env = project_store.get_environment_by_id(conn, schedule.environment_id)
        project = project_store.get_project(conn, env.project_id)
        # a refusing freeze skips the slot (said in the activity log); a holding one lets
        # the task wait in its orchestration until the window ends
        frozen = freezes.frozen_now(conn, env.id, "backup", svc.clock.now())
        if frozen is not None and frozen.mode == "refuse" and frozen.overridden is None:
            activity.record(conn, actor=ACTOR, action="schedule.skipped",
                            project_id=project.id, environment_id=env.id,
                            details={"schedule": str(schedule.id), "slot": slot.isoformat(),
                                     "reason": freezes.refusal(frozen, "backup")})
            log.info("schedule %s skipped slot %s: %s", schedule.id, slot, frozen.reason)
            return None
        task, created = tasks.record(
            conn, project=project, environment=env, operation="backup",
            parameters={"scheduleId": str(schedule.id), "slot": slot.isoformat()},
            actor=ACTOR, idempotency_key=f"schedule:{schedule.id}:{slot.isoformat()}")
        if created:  # the schedule's creator approved its runs when creating it
            task = approvals.hold_for_approval(conn, task, env,
                                               pre_approved_by=schedule.created_by)
        backup_store.attach_slot_task(conn, schedule.id, slot, task.id)
        activity.record(conn, actor=ACTOR, action="schedule.fired", project_id=project.id,
                        environment_id=env.id, task_id=task.id,
                        details={"schedule": str(schedule.id), "cron": schedule.cron,
                                 "timezone": schedule.timezone, "slot": slot.isoformat()})
    if created:
        tasks.announce(task)
    log.info("schedule %s fired slot %s as task %s", schedule.id, slot, task.id)
    return task


def fired_mark_after_edit(schedule: BackupSchedule, cron: str, time_zone: str,
                          now: datetime) -> datetime | None:
    """The ``last_slot_at`` a schedule keeps when its settings change: a slot of the new
    expression that already passed counts as fired, so an edit (or re-enabling) never
    starts a catch-up backup at once; the next run is the new expression's next slot."""
    try:
        passed = latest_slot(Cron.parse(cron), zone(time_zone), now)
    except CronError:
        return schedule.last_slot_at
    marks = [m for m in (schedule.last_slot_at, passed) if m is not None]
    return max(marks) if marks else None
