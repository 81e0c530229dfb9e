"""Sandboxes are isolated: their own database and namespace, never the parent's; the
parent's approval rules follow them in."""

from __future__ import annotations

import uuid

from shared.grants.sandboxes import database_name, namespace
from tests.conftest import RunningHost
from tests.security.conftest import Victim
from tests.waiting import wait_until


def test_sandbox_database_and_namespace_names_never_collide_and_fit_63_bytes() -> None:
    project, parent = uuid.uuid4(), uuid.uuid4()
    assert database_name("a-b", project, parent, "c") != database_name("a", project, parent,
                                                                       "b-c")
    other = uuid.uuid4()
    assert database_name("shop", project, parent, "x") != database_name("shop", other,
                                                                         parent, "x")
    long = "p" * 63
    for name in (database_name(long, project, parent, "s" * 63),
                 namespace("n" * 63, project, parent, "s" * 63)):
        assert len(name.encode()) <= 63
    assert database_name(long, project, parent, "s" * 63) != database_name(
        long, project, parent, "s" * 62 + "t")


def test_a_sandbox_restarts_only_in_its_own_namespace_and_inherits_the_parents_approvals(
        victim: Victim, running_host: RunningHost) -> None:
    admin, tag = victim.admin, uuid.uuid4().hex[:4]
    project = f"sbx-{tag}"
    assert admin.post(victim.api("/projects"), json={"slug": project, "name": "S"}
                      ).status_code == 201
    r = admin.post(victim.api(f"/projects/{project}/environments"), json={
        "slug": "prod", "name": "Prod", "target": {
            "type": "agent", "pool": f"none-{tag}", "cluster": f"aks-{tag}",
            "namespace": "shop", "namespaces": ["shop-canary"]}})
    assert r.status_code == 201, r.text
    base = f"/projects/{project}/environments"
    created = admin.post(victim.api(f"{base}/prod/sandboxes"), json={"name": "try"}).json()
    assert victim.wait(created["id"])["status"] == "succeeded"
    sandbox = admin.get(victim.api(f"{base}/try")).json()
    own = sandbox["target"]["namespace"]
    assert own.startswith("shop-try-") and own != "shop"
    assert "namespaces" not in sandbox["target"]
    for parents in ("shop", "shop-canary"):
        r = admin.post(victim.api(f"{base}/try/restarts"),
                       json={"workload": "web", "namespace": parents})
        assert r.status_code == 422 and r.json()["field"] == "namespace", r.text
    r = admin.post(victim.api(f"{base}/try/restarts"), json={"workload": "web"})
    assert r.status_code == 202 and r.json()["plan"]["restart"]["namespace"] == own

    assert admin.put(victim.api(f"{base}/prod/protection"), json={
        "operations": ["deploy", "sandbox_create"], "approvers": [
            {"type": "user", "id": "dora"}]}).status_code == 200
    deploy = admin.post(victim.api(f"{base}/try/deployments"), json={"version": "9"}).json()
    assert deploy["approval"]["state"] == "pending", deploy
    dora = running_host.session("dora", ())
    admin.post(victim.api(f"/projects/{project}/roles"), json={
        "principalType": "user", "principalId": "dora", "role": "reader"})
    assert deploy["id"] in {t["id"] for t in dora.get(victim.api("/approvals")).json()
                            ["items"]}
    another = admin.post(victim.api(f"{base}/prod/sandboxes"), json={"name": "two"}).json()
    assert another["approval"]["state"] == "pending"
    for task in (deploy, another):
        admin.post(victim.api(f"/tasks/{task['id']}/cancel"))
        wait_until(lambda t=task: admin.get(victim.api(f"/tasks/{t['id']}")).json()
                   ["status"] == "cancelled", "the held task to be cancelled")
