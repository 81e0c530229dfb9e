"""Per-environment FIFO leases against real Postgres."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.db import Database
from shared.domain.task_states import TaskStatus
from shared.store import environment_leases as queue
from shared.store import projects, tasks


@pytest.fixture
def env(db: Database):
    with db.transaction() as conn:
        project = projects.create_project(conn, slug=f"q-{uuid.uuid4().hex[:8]}", name="Q",
                                          actor="t")
        return projects.create_environment(conn, project_id=project.id, slug="dev",
                                           name="Dev", target={"type": "noop"}, actor="t")


def _acquire(conn, task) -> queue.LeaseDecision:
    return queue.acquire_environment(conn, task.id)[0]


def _tasks(db: Database, env, n: int) -> list:
    out = []
    with db.transaction() as conn:
        for _ in range(n):
            task, _ = tasks.create_task(conn, project_id=env.project_id, environment_id=env.id,
                                        operation="deploy", parameters={}, requested_by="t")
            out.append(task)
    return out


def test_only_the_oldest_open_task_gets_the_environment(db: Database, env) -> None:
    first, second, third = _tasks(db, env, 3)
    with db.transaction() as conn:
        d3 = _acquire(conn, third)
        d2 = _acquire(conn, second)
        d1 = _acquire(conn, first)
    assert (d1.acquired, d2.acquired, d3.acquired) == (True, False, False)
    assert d2.position == 1 and d2.behind == first.id
    assert d3.position == 2 and d3.behind == second.id
    assert d3.reason.startswith("position 2 in the environment queue, behind task")


def test_release_hands_the_lease_to_the_next_task_in_arrival_order(db: Database,
                                                                    env) -> None:
    first, second, third = _tasks(db, env, 3)
    with db.transaction() as conn:
        assert _acquire(conn, first).acquired
        for t in (second, third):
            tasks.transition(conn, t.id, TaskStatus.WAITING, actor="t",
                             reason=_acquire(conn, t).reason)
        tasks.transition(conn, first.id, TaskStatus.RUNNING, actor="t", reason="go")
        done = tasks.transition(conn, first.id, TaskStatus.SUCCEEDED, actor="t", reason="ok")
        granted, refreshed = queue.release_environment(conn, done)
        assert granted == second.id
        assert [t.id for t in refreshed] == [third.id]
        assert refreshed[0].reason.startswith("position 1")
        assert _acquire(conn, second).acquired
        assert not _acquire(conn, third).acquired


def test_a_lease_left_by_a_finished_task_is_not_an_obstacle(db: Database, env) -> None:
    (first,) = _tasks(db, env, 1)
    with db.transaction() as conn:
        assert _acquire(conn, first).acquired
        tasks.transition(conn, first.id, TaskStatus.CANCELLED, actor="t", reason="x",
                         error="x")  # ended without releasing (a crash)
    (later,) = _tasks(db, env, 1)
    with db.transaction() as conn:
        assert _acquire(conn, later).acquired


def test_concurrent_acquires_grant_exactly_one_holder(db: Database, env) -> None:
    made = _tasks(db, env, 8)

    def try_acquire(task) -> bool:
        with db.transaction() as conn:
            return _acquire(conn, task).acquired

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(try_acquire, reversed(made)))
    assert results.count(True) == 1
    assert results[-1] is True  # the oldest task, whatever the timing
