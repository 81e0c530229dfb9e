"""A host killed mid-run (SIGKILL, a real process) and restarted: every accepted task
still ends terminal with a reason — orchestrations resume from the Postgres instance
store, and messages lost with the in-memory queue are re-sent by the sweeper."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.pipeline.test_cancel_and_failures import FakeAgent, restart
from tests.pipeline.test_pipeline_e2e import make_env, wait_for
from tests.waiting import wait_until

FAST_SWEEP = {"CLOUDOPS_RESEND_AFTER_SECONDS": "1"}


@pytest.fixture
def database() -> Iterator[str]:
    admin, name = create_throwaway_database("cloudops_restart")
    yield with_database(admin, name)
    drop_database(admin, name)


def kill(host: RunningHost) -> None:
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait()
    if host.drain is not None:
        host.drain.join(timeout=5)


def fire_sweeper(host: RunningHost) -> None:
    import requests

    r = requests.post(host.url("/admin/functions/sweep_tasks"), json={"input": ""},
                      headers={"x-functions-key": host.master_key})
    assert r.status_code in (200, 202), r.text


def test_tasks_survive_a_host_killed_mid_run(database: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    host = start_host(database, home, env=FAST_SWEEP)
    try:
        admin: Any = host.session("alice", ("admin",))
        agent = FakeAgent(host, admin, ["linux"])
        project, env = make_env(admin, host, {"type": "agent", "pool": agent.pool,
                                              "labels": ["linux"], "cluster": "c1"})
        running = restart(host, admin, project, env)
        job = agent.next_job()
        assert job is not None
        wait_for(admin, host, running["id"], {"running"})
        queued = restart(host, admin, project, env)
        wait_for(admin, host, queued["id"], {"waiting"})
        noop_project, noop_env = make_env(admin, host)
        url = host.url(f"/api/projects/{noop_project}/environments/{noop_env}/deployments")
        accepted = [admin.post(url, json={"version": str(i)}).json() for i in range(5)]
        kill(host)

        host = start_host(database, home, env=FAST_SWEEP)
        admin = host.session("alice", ("admin",))
        agent.host = host
        agent.result(job["id"], "succeeded", result={"restarted": True})
        assert wait_for(admin, host, running["id"])["status"] == "succeeded"
        second = agent.next_job(wait=10)
        assert second is not None and second["taskId"] == queued["id"]
        agent.result(second["id"], "succeeded")
        assert wait_for(admin, host, queued["id"])["status"] == "succeeded"
        lost = _task_whose_message_was_lost(database, noop_project, noop_env)
        fire_sweeper(host)
        for task in [*accepted, {"id": lost}]:
            done = wait_for(admin, host, task["id"], timeout=30)
            assert done["status"] == "succeeded", done
            assert done["reason"]
    finally:
        stop_host(host)


def _task_whose_message_was_lost(database: str, project: str, env: str) -> str:
    """A task row with no message anywhere: what a failed send or a restart leaves."""
    from datetime import UTC, datetime, timedelta

    import psycopg
    from psycopg.rows import dict_row

    from shared.store import projects, tasks

    with psycopg.connect(database, row_factory=dict_row) as conn:
        p = projects.get_project(conn, project)
        e = projects.get_environment(conn, p.id, env)
        task, _ = tasks.create_task(conn, project_id=p.id, environment_id=e.id,
                                    operation="deploy", parameters={"version": "lost"},
                                    requested_by="alice")
    old_enough = task.created_at + timedelta(seconds=1)  # CLOUDOPS_RESEND_AFTER_SECONDS
    wait_until(lambda: datetime.now(UTC) > old_enough, "the task to be old enough to resend")
    return str(task.id)
