"""Restarts of every Kubernetes workload kind through the agent protocol: the request's
``kind`` (Deployment by default, StatefulSet, DaemonSet) reaches the agent's restart job,
and the task's reason says what became ready. A kind the agent cannot restart, or a kind
on something that is not a Kubernetes workload, is refused before any task."""

from __future__ import annotations

from typing import Any

from tests.cli._agent import TestAgent
from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import admin, make_env, wait_for  # noqa: F401


def _restart(admin: Any, host: RunningHost, agent: TestAgent, base: str,  # noqa: F811
             body: dict[str, Any], ready: int) -> tuple[dict[str, Any], dict[str, Any]]:
    r = admin.post(host.url(f"{base}/restarts"), json=body)
    assert r.status_code == 202, r.text
    job = agent.next_job(wait=10)
    assert job is not None and job["kind"] == "restart"
    agent.result(job["id"], "succeeded", result={"workload": body["workload"],
                                                 "kind": job["payload"]["kind"],
                                                 "readyReplicas": ready})
    return job, wait_for(admin, host, r.json()["id"])


def test_restart_passes_the_workload_kind_to_the_agent_and_reports_it_ready(
        running_host: RunningHost, admin: Any) -> None:  # noqa: F811
    agent = TestAgent(running_host, admin)
    project, env = make_env(admin, running_host, {**agent.target, "namespace": "shop"})
    base = f"/api/projects/{project}/environments/{env}"

    job, task = _restart(admin, running_host, agent, base,
                         {"workload": "db", "kind": "statefulset"}, 3)
    assert job["payload"]["kind"] == "statefulset" and job["payload"]["namespace"] == "shop"
    assert task["status"] == "succeeded", task
    assert task["reason"] == "restarted statefulset shop/db, 3 ready"

    job, task = _restart(admin, running_host, agent, base,
                         {"workload": "log-shipper", "kind": "daemonset"}, 5)
    assert job["payload"]["kind"] == "daemonset"
    assert task["reason"] == "restarted daemonset shop/log-shipper, 5 ready"

    job, task = _restart(admin, running_host, agent, base, {"workload": "web"}, 2)
    assert job["payload"]["kind"] == "deployment"  # the default
    assert task["reason"] == "restarted shop/web, 2 ready"


def test_a_kind_that_cannot_be_restarted_is_refused_naming_the_field(
        running_host: RunningHost, admin: Any) -> None:  # noqa: F811
    agent = TestAgent(running_host, admin)
    project, env = make_env(admin, running_host,
                            {**agent.target, "services": {"api": "shop-api"}})
    base = f"/api/projects/{project}/environments/{env}"
    for body in ({"workload": "web", "kind": "replicaset"},
                 {"workload": "api", "kind": "deployment"}):  # api is a service
        r = admin.post(running_host.url(f"{base}/restarts"), json=body)
        assert r.status_code == 422, r.text
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["field"] == "kind"
    assert "not a Kubernetes workload" in r.json()["detail"]
    assert admin.get(running_host.url(f"/api/tasks?project={project}")).json()["items"] == []
    assert agent.next_job(wait=0) is None
