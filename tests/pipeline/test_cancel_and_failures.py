"""Cancel in each state, and failures that end tasks with their reason — on the local
host, with the test itself speaking the agent protocol over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import make_env, wait_for


class FakeAgent:
    """The agent side of the protocol, driven step by step by a test."""

    def __init__(self, host: RunningHost, admin: Any, labels: list[str],
                 capacity: int = 1) -> None:
        self.host = host
        self.pool = f"pool-{uuid.uuid4().hex[:6]}"
        assert admin.post(host.url("/api/pools"), json={"name": self.pool}).status_code == 201
        token = admin.post(host.url(f"/api/pools/{self.pool}/registration-tokens"),
                           json={}).json()["token"]
        registered = requests.post(host.url("/api/agent/register"),
                                   json={"token": token, "name": "a1", "labels": labels,
                                         "capacity": capacity})
        assert registered.status_code == 201, registered.text
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {registered.json()['key']}"

    def next_job(self, wait: float = 5) -> dict[str, Any] | None:
        r = self.http.get(self.host.url(f"/api/agent/jobs/next?wait={wait}"))
        return None if r.status_code == 204 else r.json()

    def heartbeat(self, running: list[str]) -> dict[str, Any]:
        return self.http.post(self.host.url("/api/agent/heartbeat"),
                              json={"running": running}).json()

    def result(self, job_id: str, status: str, **kw: Any) -> None:
        r = self.http.post(self.host.url(f"/api/agent/jobs/{job_id}/result"),
                           json={"status": status, **kw})
        assert r.status_code == 200, r.text


@pytest.fixture
def admin(running_host: RunningHost) -> Any:
    return running_host.session("alice", ("admin",))


def agent_env(host: RunningHost, admin: Any, agent: FakeAgent) -> tuple[str, str]:
    return make_env(admin, host, {"type": "agent", "pool": agent.pool, "labels": ["linux"],
                                  "cluster": "local"})


def restart(host: RunningHost, admin: Any, project: str, env: str) -> dict[str, Any]:
    r = admin.post(host.url(f"/api/projects/{project}/environments/{env}/restarts"),
                   json={"workload": "web"})
    assert r.status_code == 202, r.text
    return r.json()


def cancel(host: RunningHost, session: Any, task_id: str) -> requests.Response:
    return session.post(host.url(f"/api/tasks/{task_id}/cancel"))


def test_a_job_no_agent_can_take_fails_fast_with_the_reason(running_host: RunningHost,
                                                            admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["windows"])
    project, env = agent_env(running_host, admin, agent)
    task = wait_for(admin, running_host, restart(running_host, admin, project, env)["id"])
    assert task["status"] == "failed"
    assert "has labels linux" in task["error"] and agent.pool in task["error"]


def test_restart_without_a_cluster_fails_clearly(running_host: RunningHost,
                                                 admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["linux"])
    project, env = make_env(admin, running_host, {"type": "agent", "pool": agent.pool})
    task = wait_for(admin, running_host, restart(running_host, admin, project, env)["id"])
    assert task["status"] == "failed" and "has no workload 'web'" in task["error"]
    assert "target.services" in task["error"] and "target.cluster" in task["error"]


def test_cancel_while_waiting_for_an_agent_and_while_queued(running_host: RunningHost,
                                                           admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["linux"])
    project, env = agent_env(running_host, admin, agent)
    first = restart(running_host, admin, project, env)
    wait_for(admin, running_host, first["id"], {"waiting"})
    second = restart(running_host, admin, project, env)
    queued = wait_for(admin, running_host, second["id"], {"waiting"})
    assert queued["reason"].startswith("position 1 in the environment queue, behind task "
                                       + first["id"][:8])
    reader = running_host.session("rita", ("reader",))
    assert cancel(running_host, reader, second["id"]).status_code == 403
    assert cancel(running_host, admin, second["id"]).status_code == 202
    done = wait_for(admin, running_host, second["id"])
    assert done["status"] == "cancelled" and "alice" in done["error"]
    holder = admin.get(running_host.url(f"/api/tasks/{first['id']}")).json()
    assert holder["status"] == "waiting" and "waiting for an agent" in holder["reason"]
    assert cancel(running_host, admin, first["id"]).status_code == 202
    assert wait_for(admin, running_host, first["id"])["status"] == "cancelled"
    assert agent.next_job(wait=0.2) is None  # the cancelled job is never handed out
    assert cancel(running_host, admin, first["id"]).status_code == 409  # already ended


def test_cancel_while_running_reaches_the_agent(running_host: RunningHost,
                                                admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["linux"])
    project, env = agent_env(running_host, admin, agent)
    task = restart(running_host, admin, project, env)
    job = agent.next_job()
    assert job is not None and job["taskId"] == task["id"] and job["kind"] == "restart"
    running = wait_for(admin, running_host, task["id"], {"running"})
    assert "running on agent a1" in running["reason"]
    assert cancel(running_host, admin, task["id"]).status_code == 202
    assert agent.heartbeat([job["id"]])["cancel"] == [job["id"]]
    agent.result(job["id"], "cancelled", error="stopped on request")
    done = wait_for(admin, running_host, task["id"])
    assert done["status"] == "cancelled"
    # Who asked, in words; not "cancelled: cancelled", and not logged as an error.
    assert done["reason"].startswith("cancelled by ") and "alice" in done["reason"], done
    log = admin.get(running_host.url(f"/api/tasks/{task['id']}/logs")).json()["items"]
    assert log[-1]["text"].startswith(done["reason"]) and log[-1]["level"] == "warning"
    # the environment is free again: the next task runs
    follow = restart(running_host, admin, project, env)
    assert agent.next_job() is not None
    wait_for(admin, running_host, follow["id"], {"running"})


def test_agent_failure_fails_the_task_with_the_agents_error(running_host: RunningHost,
                                                            admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["linux"])
    project, env = agent_env(running_host, admin, agent)
    task = restart(running_host, admin, project, env)
    job = agent.next_job()
    assert job is not None
    agent.result(job["id"], "failed", error="rollout did not become ready\npod web-1: "
                 "CrashLoopBackOff\npod web-2: CrashLoopBackOff")
    done = wait_for(admin, running_host, task["id"])
    assert done["status"] == "failed"
    assert done["error"].splitlines() == ["rollout did not become ready",
                                          "pod web-1: CrashLoopBackOff",
                                          "pod web-2: CrashLoopBackOff"]
    # The reason is the headline, never just the status again ("failed: failed").
    assert done["reason"] == "rollout did not become ready"


def test_operations_on_different_environments_run_at_the_same_time(
        running_host: RunningHost, admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["linux"], capacity=5)
    envs = [agent_env(running_host, admin, agent) for _ in range(5)]
    tasks = [restart(running_host, admin, project, env) for project, env in envs]
    jobs = [agent.next_job() for _ in tasks]
    assert all(jobs)
    states = [admin.get(running_host.url(f"/api/tasks/{t['id']}")).json()["status"]
              for t in tasks]
    assert states == ["running"] * 5  # all five environments busy at once
    for job in jobs:
        agent.result(job["id"], "succeeded")
    assert {wait_for(admin, running_host, t["id"])["status"] for t in tasks} == {"succeeded"}
