"""Scheduled backups on real Postgres with a manual clock: a due slot fires exactly once
even with two timer runs racing, and downtime gives one catch-up, not one per slot."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from uuid import UUID

from shared.clock import ManualClock
from shared.domain.models import BackupSchedule
from shared.schedules.due import due_slot, fire_due_schedules
from shared.services import Services
from shared.store import backups as backup_store
from tests.notify.conftest import make_project


def hourly_schedule(svc: Services, created_at: datetime,
                    cron: str = "0 0 * * * *") -> BackupSchedule:
    _, env = make_project(svc)
    with svc.db.transaction() as conn:
        schedule = backup_store.create_schedule(conn, environment_id=env.id, cron=cron,
                                                timezone="Europe/Amsterdam", retain_count=None,
                                                retain_days=None, actor="alice",
                                                created_at=created_at)
    return schedule


def tasks_of(svc: Services, schedule_id: UUID) -> list[dict[str, object]]:
    with svc.db.transaction() as conn:
        return conn.execute(
            "SELECT s.slot_at, t.id, t.operation, t.requested_by, t.status, t.parameters"
            " FROM backup_schedule_slots s JOIN tasks t ON t.id = s.task_id"
            " WHERE s.schedule_id = %s ORDER BY s.slot_at", (schedule_id,)).fetchall()


def fire(svc: Services, schedule_id: UUID) -> list[datetime]:
    return [f.slot_at for f in fire_due_schedules(svc) if f.schedule_id == schedule_id]


def top_of_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def test_a_due_slot_fires_exactly_once_with_two_timer_runs_racing(plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]
    start = top_of_hour(clock.now())
    schedule = hourly_schedule(plane, start + timedelta(minutes=1))
    for hour in range(1, 4):  # three slots, each raced by two "hosts"
        clock.advance(start + timedelta(hours=hour, seconds=5) - clock.now())
        barrier = threading.Barrier(2)
        results: list[list[datetime]] = []

        def timer_run(barrier: threading.Barrier, results: list[list[datetime]]) -> None:
            barrier.wait()
            results.append(fire(plane, schedule.id))

        runs = [threading.Thread(target=timer_run, args=(barrier, results))
                for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        assert sorted(len(r) for r in results) == [0, 1]
    rows = tasks_of(plane, schedule.id)
    assert [r["slot_at"] for r in rows] == [start + timedelta(hours=h) for h in (1, 2, 3)]
    assert {(r["operation"], r["requested_by"]) for r in rows} == {("backup", "scheduler")}
    sent = [m for m in plane.bus.sent if m.message_id in {str(r["id"]) for r in rows}]  # type: ignore[attr-defined]
    assert len(sent) == 3  # one Service Bus message per slot


def test_three_hours_of_downtime_give_one_catch_up(plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]
    start = top_of_hour(clock.now())
    schedule = hourly_schedule(plane, start + timedelta(minutes=1))
    clock.advance(start + timedelta(hours=1, seconds=30) - clock.now())
    assert fire(plane, schedule.id) == [start + timedelta(hours=1)]
    clock.advance(timedelta(hours=3, minutes=20))  # the host was down for three slots
    assert fire(plane, schedule.id) == [start + timedelta(hours=4)]
    clock.advance(timedelta(minutes=1))
    assert fire(plane, schedule.id) == []
    clock.advance(start + timedelta(hours=5, seconds=1) - clock.now())
    assert fire(plane, schedule.id) == [start + timedelta(hours=5)]
    assert len(tasks_of(plane, schedule.id)) == 3


def test_nothing_is_due_before_the_first_slot_after_creation(plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]
    created = top_of_hour(clock.now()) + timedelta(minutes=30)
    schedule = hourly_schedule(plane, created)
    with plane.db.transaction() as conn:
        schedule = backup_store.get_schedule(conn, schedule.id)
    assert due_slot(schedule, created + timedelta(minutes=29)) is None
    assert due_slot(schedule, created + timedelta(minutes=30)) == created + timedelta(
        minutes=30)


def test_disabled_and_broken_schedules_never_fire(plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]
    start = top_of_hour(clock.now())
    disabled = hourly_schedule(plane, start - timedelta(hours=2))
    broken = hourly_schedule(plane, start - timedelta(hours=2))
    with plane.db.transaction() as conn:
        conn.execute("UPDATE backup_schedules SET enabled = false WHERE id = %s",
                     (disabled.id,))
        conn.execute("UPDATE backup_schedules SET cron = 'not a cron' WHERE id = %s",
                     (broken.id,))
    assert fire(plane, disabled.id) == [] and fire(plane, broken.id) == []


def _freeze_backups(svc: Services, schedule: BackupSchedule, mode: str) -> None:
    from zoneinfo import ZoneInfo

    from shared.store import projects as project_store
    from shared.tasks.freezes import Freezes, set_windows

    now, ams = svc.clock.now(), ZoneInfo("Europe/Amsterdam")
    window = {"name": "year-end", "type": "freeze", "timezone": "Europe/Amsterdam",
              "operations": ["backup"], "mode": mode,
              "start": (now - timedelta(days=1)).astimezone(ams).strftime("%Y-%m-%dT%H:%M"),
              "end": (now + timedelta(days=1)).astimezone(ams).strftime("%Y-%m-%dT%H:%M")}
    with svc.db.transaction() as conn:
        env = project_store.get_environment_by_id(conn, schedule.environment_id)
        set_windows(conn, env, Freezes.model_validate({"windows": [window]}), actor="alice")


def test_a_refusing_freeze_skips_the_slot_and_says_why(plane: Services) -> None:
    from shared.store import activity

    clock: ManualClock = plane.clock  # type: ignore[assignment]
    start = top_of_hour(clock.now())
    schedule = hourly_schedule(plane, start + timedelta(minutes=1))
    _freeze_backups(plane, schedule, "refuse")
    clock.advance(start + timedelta(hours=1, seconds=5) - clock.now())
    assert fire(plane, schedule.id) == []
    assert fire(plane, schedule.id) == []  # the slot is spent, not retried
    assert tasks_of(plane, schedule.id) == []
    with plane.db.transaction() as conn:
        skipped = [e for e in activity.list_activity(conn, actor="scheduler")
                   if e.action == "schedule.skipped"
                   and e.details["schedule"] == str(schedule.id)]
    assert len(skipped) == 1
    assert "change freeze 'year-end': frozen until" in skipped[0].details["reason"]


def test_a_holding_freeze_lets_the_slot_fire_a_task_that_waits(plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]
    start = top_of_hour(clock.now())
    schedule = hourly_schedule(plane, start + timedelta(minutes=1))
    _freeze_backups(plane, schedule, "hold")
    clock.advance(start + timedelta(hours=1, seconds=5) - clock.now())
    assert len(fire(plane, schedule.id)) == 1  # its orchestration holds it
