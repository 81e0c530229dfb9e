"""A project reaches only the agent pools, databases, clusters and sites granted to it."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest

from tests.conftest import RunningHost
from tests.security.conftest import Victim, own_project
from tests.waiting import wait_until


def _refused(r: Any, field: str, *names: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["field"] == field, problem
    for name in names:
        assert name in problem["detail"], problem


def _nothing_ran(victim: Victim, project: str, dirs_before: set[str]) -> None:
    assert victim.jobs_of(project) == []
    assert victim.agent_job_dirs() == dirs_before
    assert not victim.marker.exists()
    assert victim.customers() == [(1, "Ada"), (2, "Grace")]


def test_operator_cannot_point_her_project_at_another_projects_pool_and_run_code(
        victim: Victim, mallory: Any, running_host: RunningHost) -> None:
    evil = own_project(running_host, mallory)
    before = victim.agent_job_dirs()
    r = mallory.post(victim.api(f"/projects/{evil}/scripts"), json={
        "name": "pwn", "argv": [sys.executable, "-c",
                                f"open({str(victim.marker)!r}, 'w').write('pwned')"]})
    assert r.status_code == 201, r.text
    r = mallory.post(victim.api(f"/projects/{evil}/environments"), json={
        "slug": "dev", "name": "Dev", "target": {"type": "agent", "pool": victim.pool}})
    _refused(r, "target.pool", victim.pool, evil)
    assert mallory.get(victim.api(f"/projects/{evil}/environments")).json()["items"] == []
    # the same through a PATCH of an environment she may have
    r = mallory.post(victim.api(f"/projects/{evil}/environments"), json={
        "slug": "dry", "name": "Dry", "target": {"type": "noop"}})
    assert r.status_code == 201, r.text
    r = mallory.patch(victim.api(f"/projects/{evil}/environments/dry"), json={
        "target": {"type": "agent", "pool": victim.pool}})
    _refused(r, "target.pool", victim.pool)
    env = mallory.get(victim.api(f"/projects/{evil}/environments/dry")).json()
    assert env["target"] == {"type": "noop"}
    run = mallory.post(victim.api(f"/projects/{evil}/environments/dry/scripts/pwn/runs"),
                       json={"parameters": {}})
    assert victim.wait(run.json()["id"])["status"] == "succeeded"  # a dry run, nothing else
    _nothing_ran(victim, evil, before)
    denied = [e for e in victim.admin.get(victim.api(f"/activity?project={evil}")).json()
              ["items"] if e["action"] == "environment.updated"]
    assert denied == []


def test_operator_cannot_name_another_projects_database_connection(
        victim: Victim, mallory: Any, running_host: RunningHost) -> None:
    evil = own_project(running_host, mallory)
    before = victim.agent_job_dirs()
    r = mallory.post(victim.api(f"/projects/{evil}/environments"), json={
        "slug": "dev", "name": "Dev", "target": {"type": "noop"},
        "database": {"connection": victim.connection}})
    _refused(r, "database.connection", victim.connection)
    r = mallory.post(victim.api(f"/projects/{evil}/environments"), json={
        "slug": "dev", "name": "Dev", "target": {"type": "noop"},
        "database": {"connection": f"never-registered-{uuid.uuid4().hex[:4]}"}})
    _refused(r, "database.connection", "not registered")
    _nothing_ran(victim, evil, before)


@pytest.mark.parametrize(("target", "field"), [
    ({"type": "appservice", "subscriptionId": "00000000-0000-0000-0000-0000000000aa",
      "resourceGroup": "prod-rg", "site": "payroll"}, "target.site"),
    ({"type": "agent", "pool": "nope-pool", "cluster": "prod-aks"}, "target.pool"),
])
def test_operator_cannot_name_an_ungranted_site_or_cluster(
        victim: Victim, mallory: Any, running_host: RunningHost, target: dict[str, Any],
        field: str) -> None:
    evil = own_project(running_host, mallory)
    r = mallory.post(victim.api(f"/projects/{evil}/environments"),
                     json={"slug": "dev", "name": "Dev", "target": target})
    _refused(r, field)


def test_cluster_grant_limits_the_namespaces_a_project_may_use(
        victim: Victim, running_host: RunningHost) -> None:
    admin, cluster = victim.admin, f"aks-{uuid.uuid4().hex[:4]}"
    project = own_project(running_host, running_host.session("pat", ("operator",)))
    pool = f"kp-{uuid.uuid4().hex[:4]}"
    assert admin.post(victim.api("/pools"), json={"name": pool}).status_code == 201
    assert admin.post(victim.api(f"/resources/pool:{pool}/grants"),
                      json={"project": project}).status_code == 201
    assert admin.post(victim.api("/resources"), json={"kind": "cluster", "name": cluster}
                      ).status_code == 201
    r = admin.post(victim.api(f"/resources/cluster:{cluster}/grants"),
                   json={"project": project, "namespaces": ["shop"]})
    assert r.status_code == 201, r.text
    owner = running_host.session("pat", ("operator",))
    base = {"slug": "k", "name": "K"}
    agent = {"type": "agent", "pool": pool, "cluster": cluster}
    r = owner.post(victim.api(f"/projects/{project}/environments"), json={
        **base, "target": {**agent, "namespace": "kube-system"}})
    _refused(r, "target.cluster", "kube-system")
    r = owner.post(victim.api(f"/projects/{project}/environments"), json={
        **base, "target": {**agent, "namespace": "shop", "namespaces": ["kube-system"]}})
    _refused(r, "target.cluster", "kube-system")
    r = owner.post(victim.api(f"/projects/{project}/environments"), json={
        **base, "target": {**agent, "namespace": "shop"}})
    assert r.status_code == 201, r.text


def test_a_global_admin_saving_an_environment_authorizes_its_resources_and_it_is_audited(
        victim: Victim, running_host: RunningHost) -> None:
    project = f"ok-{uuid.uuid4().hex[:6]}"
    admin = victim.admin
    assert admin.post(victim.api("/projects"), json={"slug": project, "name": "Ok"}
                      ).status_code == 201
    connection = f"db-{uuid.uuid4().hex[:4]}"
    r = admin.post(victim.api(f"/projects/{project}/environments"), json={
        "slug": "dev", "name": "Dev", "target": {"type": "noop"},
        "database": {"connection": connection}})
    assert r.status_code == 201, r.text
    grants = admin.get(victim.api(f"/resources/connection:{connection}/grants")).json()
    assert [g["project"] for g in grants["items"]] == [project]
    audit = [e for e in admin.get(victim.api(f"/activity?project={project}")).json()["items"]
             if e["action"] == "resource.granted"]
    assert audit and audit[0]["details"]["via"] == "saving environment dev"


def test_a_grant_withdrawn_while_the_task_waits_for_an_agent_fails_it_with_that_reason(
        victim: Victim, running_host: RunningHost) -> None:
    """The task waits for an agent of a pool whose only agent is offline; withdrawing
    the pool's grant fails it at once, and no agent ever gets the job."""
    admin, tag = victim.admin, uuid.uuid4().hex[:4]
    pool, project = f"idle-{tag}", f"wait-{tag}"
    assert admin.post(victim.api("/pools"), json={"name": pool}).status_code == 201
    token = admin.post(victim.api(f"/pools/{pool}/registration-tokens"), json={}).json()
    assert running_host.session().post(victim.api("/agent/register"), json={
        "token": token["token"], "name": "asleep"}).status_code == 201
    assert admin.post(victim.api("/projects"), json={"slug": project, "name": "W"}
                      ).status_code == 201
    grant = admin.post(victim.api(f"/resources/pool:{pool}/grants"),
                       json={"project": project}).json()
    r = admin.post(victim.api(f"/projects/{project}/environments"), json={
        "slug": "dev", "name": "Dev", "target": {"type": "agent", "pool": pool},
        "database": {"connection": victim.connection}})
    assert r.status_code == 201, r.text  # a global admin: the connection is granted too
    task = admin.post(victim.api(f"/projects/{project}/environments/dev/backups"), json={}
                      ).json()
    wait_until(lambda: "waiting for an agent" in (admin.get(victim.api(
        f"/tasks/{task['id']}")).json()["reason"] or ""), "the task to wait for an agent")
    r = admin.delete(victim.api(f"/resources/pool:{pool}/grants/{grant['id']}"))
    assert r.status_code == 204, r.text
    done = victim.wait(task["id"], timeout=30)
    assert done["status"] == "failed", done
    assert f"agent pool '{pool}' is not granted to project {project}" in done["error"]
    [job] = victim.jobs_of(project)
    assert job["status"] == "failed" and job["agent_id"] is None and job["claimed_at"] is None
    # and a new task on it is refused before any job exists
    again = admin.post(victim.api(f"/projects/{project}/environments/dev/backups"), json={}
                       ).json()
    assert victim.wait(again["id"])["status"] == "failed"
    assert len(victim.jobs_of(project)) == 1
