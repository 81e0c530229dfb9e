"""Retention on real Postgres and the local artifact store: only behind a newer good
backup, keep-last-N and keep-N-days combined conservatively, artifact and row removed.
A backup's age is the database's to tell: it stamped ``created_at`` (see shared/clock.py),
so the helpers here age backups in SQL, against ``now()``."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from shared.clock import ManualClock
from shared.domain.models import Environment
from shared.schedules.retention import apply_retention
from shared.services import Services
from shared.store import activity
from shared.store import backups as backup_store
from tests.notify.conftest import make_project


def backup_aged(svc: Services, env: Environment, age: timedelta, label: str) -> UUID:
    name = f"backups/{env.project_id}/{env.slug}/{label}.dump"
    path = svc.artifacts.path(name)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PGDMP" + label.encode())
    with svc.db.transaction() as conn:
        row = conn.execute(
            "INSERT INTO backups (environment_id, location, size_bytes, sha256, created_at)"
            " VALUES (%s, %s, 6, %s, now() - %s) RETURNING id",
            (env.id, svc.artifacts.location(name), "0" * 64, age)).fetchone()
    return row["id"]


def schedule(svc: Services, env: Environment, count: int | None, days: int | None) -> None:
    with svc.db.transaction() as conn:
        backup_store.create_schedule(conn, environment_id=env.id, cron="0 0 2 * * *",
                                     timezone="UTC", retain_count=count, retain_days=days,
                                     actor="alice", created_at=svc.clock.now())


def remaining(svc: Services, env: Environment) -> set[UUID]:
    with svc.db.transaction() as conn:
        return {b.id for b in backup_store.list_backups(conn, env.id)}


def days(n: float) -> timedelta:
    return timedelta(days=n)


def test_keep_last_n_prunes_older_backups_artifact_and_row(plane: Services) -> None:
    project, env = make_project(plane)
    schedule(plane, env, count=2, days=None)
    ids = [backup_aged(plane, env, days(age), f"b{age}") for age in (5, 4, 3, 2, 1)]
    pruned = apply_retention(plane, env.id, ids[-1])
    assert set(pruned) == set(ids[:3])
    assert remaining(plane, env) == set(ids[3:])
    for age in (5, 4, 3):
        assert not plane.artifacts.exists(f"backups/{env.project_id}/dev/b{age}.dump")
    assert plane.artifacts.exists(f"backups/{env.project_id}/dev/b1.dump")
    with plane.db.transaction() as conn:
        entries = activity.list_activity(conn, project_id=project.id, actor="retention")
    assert sorted(e.details["backup"] for e in entries) == sorted(str(i) for i in ids[:3])


def test_count_and_age_rules_keep_what_either_keeps(plane: Services) -> None:
    _, env = make_project(plane)
    schedule(plane, env, count=2, days=3)
    old, older_week, recent, newer, newest = (
        backup_aged(plane, env, days(a), f"b{a}") for a in (10, 6, 2.5, 2, 1))
    assert set(apply_retention(plane, env.id, newest)) == {old, older_week}
    assert remaining(plane, env) == {recent, newer, newest}


def test_nothing_is_pruned_without_a_policy_or_ahead_of_the_new_backup(
        plane: Services) -> None:
    _, env = make_project(plane)
    ids = [backup_aged(plane, env, days(a), f"b{a}") for a in (9, 8, 7)]
    assert apply_retention(plane, env.id, ids[-1]) == []  # no schedule, no policy
    schedule(plane, env, count=1, days=None)
    later = backup_aged(plane, env, days(0), "later")  # taken after the one that succeeded
    assert set(apply_retention(plane, env.id, ids[1])) == {ids[0]}
    assert remaining(plane, env) == {ids[1], ids[2], later}


def test_keep_days_counts_age_by_the_database_clock_not_the_injected_one(
        plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]  # the notify plane's clock
    _, env = make_project(plane)
    schedule(plane, env, count=None, days=3)
    old, recent, newest = (backup_aged(plane, env, days(a), f"b{a}") for a in (4, 2, 1))
    clock.advance(days(30))  # a clock far ahead of the database ages nothing
    assert apply_retention(plane, env.id, newest) == [old]
    clock.advance(-days(60))  # nor does one far behind keep what the database says is old
    older = backup_aged(plane, env, days(5), "b5")
    assert apply_retention(plane, env.id, newest) == [older]
    assert remaining(plane, env) == {recent, newest}


def test_other_environments_backups_are_untouched(plane: Services) -> None:
    _, env = make_project(plane)
    _, other = make_project(plane)
    schedule(plane, env, count=1, days=None)
    theirs = backup_aged(plane, other, days(30), "theirs")
    mine = [backup_aged(plane, env, days(a), f"m{a}") for a in (2, 1)]
    assert apply_retention(plane, env.id, mine[-1]) == [mine[0]]
    assert remaining(plane, other) == {theirs}


