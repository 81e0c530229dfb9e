"""What runs is what was approved; restarts stay inside the environment's namespaces."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from tests.conftest import RunningHost
from tests.security.conftest import Victim
from tests.waiting import wait_until


def _protect_deploys(victim: Victim, approver: str) -> None:
    admin = victim.admin
    assert admin.post(victim.api(f"/projects/{victim.project}/roles"), json={
        "principalType": "user", "principalId": approver, "role": "reader"}
    ).status_code == 201
    r = admin.put(victim.api(f"/projects/{victim.project}/environments/dev/protection"),
                  json={"operations": ["deploy"], "requiredApprovals": 1,
                        "approvers": [{"type": "user", "id": approver}]})
    assert r.status_code == 200, r.text


def _awaiting_approval(victim: Victim, version: str) -> dict[str, Any]:
    task = victim.admin.post(victim.api(
        f"/projects/{victim.project}/environments/dev/deployments"),
        json={"version": version}).json()

    def pending() -> dict[str, Any] | None:
        now = victim.admin.get(victim.api(f"/tasks/{task['id']}")).json()
        return now if (now.get("approval") or {}).get("state") == "pending" else None

    return wait_until(pending, "the deploy to wait for approval")


def _approve(victim: Victim, approver: Any, task_id: str) -> None:
    r = approver.post(victim.api(f"/tasks/{task_id}/approvals"), json={"decision": "approve"})
    assert r.status_code == 201, r.text


def _deployed_versions(victim: Victim) -> list[str]:
    return victim.marker.read_text().split() if victim.marker.exists() else []


def test_the_approved_plan_runs_and_a_script_swapped_after_the_request_does_not(
        victim: Victim, running_host: RunningHost) -> None:
    _protect_deploys(victim, "carol")
    carol = running_host.session("carol", ())
    good = _awaiting_approval(victim, "2.0.0")
    assert good["plan"]["resources"]["pool"] == victim.pool
    assert good["plan"]["resources"]["connection"] == victim.connection
    assert "2.0.0" in " ".join(good["plan"]["script"]["argv"])
    _approve(victim, carol, good["id"])
    assert victim.wait(good["id"])["status"] == "succeeded"
    assert _deployed_versions(victim) == ["2.0.0"]

    swapped = _awaiting_approval(victim, "3.0.0")
    evil = victim.state / "evil-ran"
    admin = victim.admin
    assert admin.delete(victim.api(f"/projects/{victim.project}/scripts/deploy")
                        ).status_code == 204
    assert admin.post(victim.api(f"/projects/{victim.project}/scripts"), json={
        "name": "deploy", "argv": [sys.executable, "-c",
                                   f"open({str(evil)!r}, 'w').write('{{version}}')"],
        "parameters": [{"name": "version"}, {"name": "environment", "required": False}]}
    ).status_code == 201
    jobs_before = len(victim.jobs_of(victim.project))
    _approve(victim, carol, swapped["id"])
    done = victim.wait(swapped["id"])
    assert done["status"] == "failed", done
    assert done["error"].startswith("the environment changed since approval: script.argv")
    assert not evil.exists() and _deployed_versions(victim) == ["2.0.0"]
    assert len(victim.jobs_of(victim.project)) == jobs_before


def test_an_environment_changed_after_approval_fails_instead_of_running(
        victim: Victim, running_host: RunningHost) -> None:
    carol = running_host.session("carol", ())
    # restore the approved deploy script the previous test replaced
    admin = victim.admin
    admin.delete(victim.api(f"/projects/{victim.project}/scripts/deploy"))
    assert admin.post(victim.api(f"/projects/{victim.project}/scripts"), json={
        "name": "deploy", "argv": [sys.executable, "-c",
                                   f"open({str(victim.marker)!r}, 'a')"
                                   ".write('{version}\\n')"],
        "parameters": [{"name": "version"}, {"name": "environment", "required": False}]}
    ).status_code == 201
    task = _awaiting_approval(victim, "4.0.0")
    r = admin.patch(victim.api(f"/projects/{victim.project}/environments/dev"), json={
        "target": {"type": "agent", "pool": victim.pool, "deployScript": "deploy",
                   "labels": ["elsewhere"]}})
    assert r.status_code == 200, r.text
    jobs_before = len(victim.jobs_of(victim.project))
    _approve(victim, carol, task["id"])
    done = victim.wait(task["id"])
    assert done["status"] == "failed", done
    assert "the environment changed since approval: resources.labels was [], now " \
           "[elsewhere]" in done["error"]
    assert len(victim.jobs_of(victim.project)) == jobs_before
    assert "4.0.0" not in _deployed_versions(victim)


def test_a_restart_naming_a_namespace_outside_the_environment_is_refused(
        victim: Victim, running_host: RunningHost) -> None:
    admin, tag = victim.admin, uuid.uuid4().hex[:4]
    project = f"k8s-{tag}"
    assert admin.post(victim.api("/projects"), json={"slug": project, "name": "K"}
                      ).status_code == 201
    r = admin.post(victim.api(f"/projects/{project}/environments"), json={
        "slug": "dev", "name": "Dev", "target": {
            "type": "agent", "pool": f"none-{tag}", "cluster": f"aks-{tag}",
            "namespace": "shop", "namespaces": ["shop-canary"]}})
    assert r.status_code == 201, r.text
    url = victim.api(f"/projects/{project}/environments/dev/restarts")
    for namespace in ("kube-system", "default"):
        r = admin.post(url, json={"workload": "coredns", "namespace": namespace})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "namespace" and "shop, shop-canary" in r.json()["detail"]
    assert admin.get(victim.api(f"/tasks?project={project}")).json()["items"] == []
    allowed = admin.post(url, json={"workload": "web", "namespace": "shop-canary"})
    assert allowed.status_code == 202, allowed.text
    assert allowed.json()["plan"]["restart"] == {"workload": "web",
                                                 "namespace": "shop-canary"}
