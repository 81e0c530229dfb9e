"""Agents failing under a running job, with real ``cloudops-agent`` processes: killed with
SIGKILL mid-job, paused (SIGSTOP) past their lease, slower than the lease (but alive), and
unable to write the backup (unwritable work location, a full disk). Each time the task ends
terminal with a reason and a job that is not safe to repeat is never claimed twice."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import RunningHost, create_throwaway_database, drop_database, with_database
from tests.faults._harness import fire, job_claims, lease_of, make_env, settle, wait_past
from tests.faults.conftest import Agent, AgentFactory
from tests.waiting import wait_until


def _script_env(host: RunningHost, pool: str, seconds: float) -> tuple[Any, str]:
    admin = host.session("alice", ("admin",))
    project, _ = make_env(admin, host, {"type": "agent", "pool": pool, "labels": ["linux"]})
    code = f"import time; print('working', flush=True); time.sleep({seconds}); print('done')"
    r = admin.post(host.url(f"/api/projects/{project}/scripts"),
                   json={"name": "work", "argv": [sys.executable, "-c", code],
                         "parameters": [], "timeoutSeconds": 120})
    assert r.status_code == 201, r.text
    return admin, project


def _run_script(host: RunningHost, admin: Any, project: str) -> str:
    r = admin.post(host.url(f"/api/projects/{project}/environments/dev/scripts/work/runs"),
                   json={"parameters": {}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _wait_running_on_agent(host: RunningHost, admin: Any, task_id: str) -> None:
    wait_until(lambda: (t := admin.get(host.url(f"/api/tasks/{task_id}")).json())["status"]
               == "running" and "running on agent" in (t["reason"] or ""),
               f"task {task_id} to run on the agent")


def _finished_jobs(agent: Agent) -> int:
    """How many jobs the agent process has said it finished, in its own log."""
    log = agent.state / "agent.log"
    return log.read_text(errors="replace").count("job finished") if log.exists() else 0


def _pool() -> str:
    import secrets

    return f"pool-{secrets.token_hex(3)}"


def test_agent_killed_mid_job_ends_the_script_task_lost_not_repeated(
        fast_host: RunningHost, agents: AgentFactory) -> None:
    pool = _pool()
    first = agents(fast_host, pool)
    admin, project = _script_env(fast_host, pool, 30)
    task_id = _run_script(fast_host, admin, project)
    _wait_running_on_agent(fast_host, admin, task_id)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    agents(fast_host, pool)  # a healthy agent in the same pool must not get the script
    wait_past(lease_of(fast_host, task_id), "the killed agent's lease to run out")
    fire(fast_host, "agent_lease_reaper")
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "failed" and "agent lost" in task["error"], task
    assert job_claims(fast_host.database_url, [task_id]) == {task_id: 1}


def test_agent_paused_past_its_lease_loses_the_job_and_its_late_result_is_refused(
        fast_host: RunningHost, agents: AgentFactory) -> None:
    pool = _pool()
    agent = agents(fast_host, pool)
    admin, project = _script_env(fast_host, pool, 1.5)
    task_id = _run_script(fast_host, admin, project)
    _wait_running_on_agent(fast_host, admin, task_id)
    agent.proc.send_signal(signal.SIGSTOP)
    try:
        wait_past(lease_of(fast_host, task_id), "the paused agent's lease to run out")
        fire(fast_host, "agent_lease_reaper")
        task = settle(fast_host, [task_id])[task_id]
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    assert task["status"] == "failed" and "agent lost" in task["error"], task
    # the resumed agent finishes its script and reports: refused
    wait_until(lambda: _finished_jobs(agent) >= 1, "the resumed agent to end its job")
    after = admin.get(fast_host.url(f"/api/tasks/{task_id}")).json()
    assert after["status"] == "failed" and after["finishedAt"] == task["finishedAt"]
    assert agent.proc.poll() is None  # the refusal does not crash the agent
    follow = _run_script(fast_host, admin, project)  # and it takes new work
    assert settle(fast_host, [follow])[follow]["status"] == "succeeded"
    assert job_claims(fast_host.database_url, [task_id]) == {task_id: 1}


def test_slow_agent_keeps_its_lease_by_heartbeating_and_succeeds(
        fast_host: RunningHost, agents: AgentFactory) -> None:
    pool = _pool()
    agents(fast_host, pool)
    admin, project = _script_env(fast_host, pool, 4)  # twice the 2 s lease
    task_id = _run_script(fast_host, admin, project)
    _wait_running_on_agent(fast_host, admin, task_id)
    first_term = lease_of(fast_host, task_id)
    wait_past(first_term, "the job's first lease term to pass")
    assert lease_of(fast_host, task_id) > first_term  # heartbeats renewed it
    fire(fast_host, "agent_lease_reaper")  # the lease was renewed: nothing to reap
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "succeeded", task
    assert job_claims(fast_host.database_url, [task_id]) == {task_id: 1}


@pytest.fixture(scope="module")
def source_db() -> Iterator[str]:
    """A database worth a dump of ~1 MB."""
    admin, name = create_throwaway_database("cloudops_faults_src")
    url = with_database(admin, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5((g * 7)::text)"
                     " AS text FROM generate_series(1, 20000) g")
    yield url
    drop_database(admin, name)


def _backup(host: RunningHost, pool: str) -> str:
    admin = host.session("alice", ("admin",))
    project = f"bk-{time.monotonic_ns() % 10**8}"
    assert admin.post(host.url("/api/projects"),
                      json={"slug": project, "name": project}).status_code == 201
    r = admin.post(host.url(f"/api/projects/{project}/environments"),
                   json={"slug": "dev", "name": "dev", "database": {"connection": "src"},
                         "target": {"type": "agent", "pool": pool, "labels": ["linux"]}})
    assert r.status_code == 201, r.text
    r = admin.post(host.url(f"/api/projects/{project}/environments/dev/backups"), json={})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_backup_to_an_unwritable_location_fails_cleanly(
        fast_host: RunningHost, agents: AgentFactory, source_db: str, tmp_path: Path) -> None:
    blocked = tmp_path / "work"
    blocked.mkdir()
    (blocked / "jobs").write_text("a file where the job folders should go")
    pool = _pool()
    agent = agents(fast_host, pool, connections={"src": source_db}, work_dir=blocked)
    task_id = _backup(fast_host, pool)
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "failed", task
    assert task["error"] and "Traceback" not in task["error"]
    assert agent.proc.poll() is None


def test_backup_on_a_full_disk_fails_cleanly(
        fast_host: RunningHost, agents: AgentFactory, source_db: str) -> None:
    pool = _pool()
    agent = agents(fast_host, pool, connections={"src": source_db},
                   file_size_limit=64 * 1024)  # pg_dump cannot write the ~1 MB dump
    task_id = _backup(fast_host, pool)
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "failed", task
    assert "pg_dump" in task["error"], task
    assert agent.proc.poll() is None
