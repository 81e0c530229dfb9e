"""Protected environments end to end on the local host: approve, reject, timeout,
self-approval refused, two approvers, pre-approved scheduled runs, and the queue order
kept while a task waits for approval."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import RunningHost
from tests.pipeline.test_cancel_and_failures import FakeAgent, agent_env, restart
from tests.pipeline.test_pipeline_e2e import make_env, wait_for
from tests.waiting import wait_until


@pytest.fixture
def admin(running_host: RunningHost) -> Any:
    return running_host.session("alice", ("admin",))


def protect(host: RunningHost, admin: Any, project: str, env: str, **rule: Any) -> None:
    body = {"operations": ["deploy"], "approvers": [{"type": "user", "id": "ann"}], **rule}
    r = admin.put(host.url(f"/api/projects/{project}/environments/{env}/protection"), json=body)
    assert r.status_code == 200, r.text


def grant(host: RunningHost, admin: Any, project: str, user: str, role: str) -> None:
    r = admin.post(host.url(f"/api/projects/{project}/roles"),
                   json={"principalType": "user", "principalId": user, "role": role})
    assert r.status_code == 201, r.text


def deploy(host: RunningHost, who: Any, project: str, env: str) -> dict[str, Any]:
    r = who.post(host.url(f"/api/projects/{project}/environments/{env}/deployments"),
                 json={"version": "9.9.9"})
    assert r.status_code == 202, r.text
    return r.json()


def decide(host: RunningHost, who: Any, task_id: str, decision: str, comment: str = "") -> Any:
    return who.post(host.url(f"/api/tasks/{task_id}/approvals"),
                    json={"decision": decision, "comment": comment})


@pytest.fixture
def protected(running_host: RunningHost, admin: Any) -> tuple[str, str]:
    project, env = make_env(admin, running_host)
    for user in ("bob", "ann", "carl"):
        grant(running_host, admin, project, user, "operator")
    return project, env


def test_approved_operation_runs(running_host: RunningHost, admin: Any,
                                 protected: tuple[str, str]) -> None:
    project, env = protected
    protect(running_host, admin, project, env)
    bob, ann = running_host.session("bob", ()), running_host.session("ann", ())
    task = deploy(running_host, bob, project, env)
    waiting = wait_for(bob, running_host, task["id"], {"waiting"})
    assert waiting["reason"] == "awaiting approval from user ann (0/1)"
    assert [t["id"] for t in ann.get(running_host.url("/api/approvals")).json()["items"]] == [
        task["id"]]
    assert bob.get(running_host.url("/api/approvals")).json()["items"] == []
    assert decide(running_host, ann, task["id"], "approve", "ship it").status_code == 201
    done = wait_for(bob, running_host, task["id"])
    assert done["status"] == "succeeded" and done["approval"]["state"] == "approved"
    actions = [e["action"] for e in admin.get(running_host.url(
        f"/api/activity?project={project}")).json()["items"]]
    assert "approval.approve" in actions and "environment.protected" in actions


def test_rejected_operation_ends_cancelled_with_the_reason(
        running_host: RunningHost, admin: Any, protected: tuple[str, str]) -> None:
    project, env = protected
    protect(running_host, admin, project, env)
    bob, ann = running_host.session("bob", ()), running_host.session("ann", ())
    task = deploy(running_host, bob, project, env)
    wait_for(bob, running_host, task["id"], {"waiting"})
    decide(running_host, ann, task["id"], "reject", "not during the freeze")
    done = wait_for(bob, running_host, task["id"])
    assert done["status"] == "cancelled"
    assert done["error"] == "rejected by ann@example.com: not during the freeze"


def test_approval_timeout_cancels_with_the_reason(running_host: RunningHost, admin: Any,
                                                  protected: tuple[str, str]) -> None:
    project, env = protected
    protect(running_host, admin, project, env, timeoutMinutes=0.05)
    task = deploy(running_host, running_host.session("bob", ()), project, env)
    done = wait_for(admin, running_host, task["id"], timeout=30)
    assert done["status"] == "cancelled" and "approval timed out" in done["error"]


def test_self_approval_is_refused_and_audited(running_host: RunningHost, admin: Any,
                                              protected: tuple[str, str]) -> None:
    project, env = protected
    protect(running_host, admin, project, env,
            approvers=[{"type": "user", "id": "bob"}, {"type": "user", "id": "ann"}])
    bob = running_host.session("bob", ())
    task = deploy(running_host, bob, project, env)
    wait_for(bob, running_host, task["id"], {"waiting"})
    refused = decide(running_host, bob, task["id"], "approve")
    assert refused.status_code == 403 and "own" in refused.json()["detail"]
    carl = running_host.session("carl", ())
    assert decide(running_host, carl, task["id"], "approve").status_code == 403
    denied = [e for e in admin.get(running_host.url(
        f"/api/activity?project={project}")).json()["items"] if e["action"] == "access.denied"]
    assert {e["actor"] for e in denied} >= {"bob", "carl"}  # stable ids
    assert {e["actorName"] for e in denied} >= {"bob@example.com", "carl@example.com"}
    decide(running_host, running_host.session("ann", ()), task["id"], "approve")
    assert wait_for(bob, running_host, task["id"])["status"] == "succeeded"


def test_two_approvers_are_needed_when_the_rule_says_two(
        running_host: RunningHost, admin: Any, protected: tuple[str, str]) -> None:
    project, env = protected
    protect(running_host, admin, project, env, requiredApprovals=2,
            approvers=[{"type": "user", "id": "ann"}, {"type": "group", "id": "release"}])
    task = deploy(running_host, running_host.session("bob", ()), project, env)
    wait_for(admin, running_host, task["id"], {"waiting"})
    ann = running_host.session("ann", ())
    decide(running_host, ann, task["id"], "approve")
    assert decide(running_host, ann, task["id"], "approve").status_code == 409  # once each
    half = admin.get(running_host.url(f"/api/tasks/{task['id']}")).json()
    assert half["status"] == "waiting" and half["reason"].endswith("(1/2)")
    r = admin.post(running_host.url(f"/api/projects/{project}/roles"),  # approvers must read
                   json={"principalType": "group", "principalId": "release", "role": "reader"})
    assert r.status_code == 201, r.text
    releaser = running_host.session("rel", ("release",))  # member of the approver group
    assert decide(running_host, releaser, task["id"], "approve").status_code == 201
    assert wait_for(admin, running_host, task["id"])["status"] == "succeeded"


def test_a_task_awaiting_approval_does_not_hold_up_the_queue(
        running_host: RunningHost, admin: Any) -> None:
    agent = FakeAgent(running_host, admin, ["linux"])
    project, env = agent_env(running_host, admin, agent)
    admin.post(running_host.url(f"/api/projects/{project}/scripts"), json={
        "name": "ship", "argv": ["ship", "{version}"], "parameters": [{"name": "version"}]})
    admin.patch(running_host.url(f"/api/projects/{project}/environments/{env}"), json={
        "target": {"type": "agent", "pool": agent.pool, "labels": ["linux"], "cluster": "c",
                   "deployScript": "ship"}})
    protect(running_host, admin, project, env)
    grant(running_host, admin, project, "ann", "reader")
    first = restart(running_host, admin, project, env)
    first_job = agent.next_job()
    protected_task = deploy(running_host, admin, project, env)
    wait_for(admin, running_host, protected_task["id"], {"waiting"})
    later = restart(running_host, admin, project, env)
    queued = wait_for(admin, running_host, later["id"], {"waiting"})
    assert queued["reason"].startswith(f"position 1 in the environment queue, behind task "
                                       f"{first['id'][:8]}")
    assert decide(running_host, running_host.session("ann", ()), protected_task["id"],
                  "approve").status_code == 201
    approved = wait_for(admin, running_host, protected_task["id"], {"waiting"})
    def reason() -> str:
        return admin.get(running_host.url(f"/api/tasks/{protected_task['id']}")).json()[
            "reason"]

    wait_until(lambda: reason().startswith("position"),
               "the approved task to take its place in the environment queue", 10)
    assert reason().startswith(f"position 2 in the environment queue, behind task "
                               f"{later['id'][:8]}"), reason()
    assert approved["approval"]["state"] == "approved"
    agent.result(first_job["id"], "succeeded")
    second_job = agent.next_job()
    assert second_job["taskId"] == later["id"]
    agent.result(second_job["id"], "succeeded")
    third_job = agent.next_job()
    assert third_job["taskId"] == protected_task["id"]
    agent.result(third_job["id"], "succeeded")
    assert wait_for(admin, running_host, protected_task["id"])["status"] == "succeeded"


def test_scheduled_runs_of_an_approver_are_pre_approved(running_host: RunningHost,
                                                        admin: Any,
                                                        protected: tuple[str, str]) -> None:
    """A task submitted for a schedule whose creator may approve skips the wait, and its
    log says why."""
    from shared.services import Services
    from shared.settings import Settings
    from shared.store import projects as project_store
    from shared.tasks.service import TaskService

    project, env = protected
    protect(running_host, admin, project, env)
    key = json.loads((running_host.home / "keys.json").read_text())["systemKeys"]["servicebus"]
    settings = Settings.from_env({
        "DATABASE_URL": running_host.database_url, "CLOUDOPS_HOME": str(running_host.home),
        "ServiceBusConnection": f"Endpoint={running_host.base_url}/servicebus/;"
                                f"SharedAccessKeyName=localhost;SharedAccessKey={key};"
                                "UseDevelopmentEmulator=true"})
    svc = Services.from_settings(settings, migrate=False)
    try:
        with svc.db.transaction() as conn:
            p = project_store.get_project(conn, project)
            e = project_store.get_environment(conn, p.id, env)
        task, _ = TaskService(svc).submit(project=p, environment=e, operation="deploy",
                                          parameters={"version": "7"}, actor="scheduler",
                                          idempotency_key=uuid.uuid4().hex,
                                          pre_approved_by="ann")
    finally:
        svc.close()
    done = wait_for(admin, running_host, str(task.id))
    assert done["status"] == "succeeded" and done["approval"]["state"] == "pre-approved"
    logs = admin.get(running_host.url(f"/api/tasks/{task.id}/logs")).json()["items"]
    assert any("pre-approved: scheduled by ann" in line["text"] for line in logs)


def test_a_decision_made_before_the_orchestration_waits_is_not_lost(
        running_host: RunningHost, admin: Any, protected: tuple[str, str]) -> None:
    project, env = protected
    protect(running_host, admin, project, env)
    ann = running_host.session("ann", ())
    approved = deploy(running_host, running_host.session("bob", ()), project, env)
    assert decide(running_host, ann, approved["id"], "approve").status_code == 201
    rejected = deploy(running_host, running_host.session("bob", ()), project, env)
    assert decide(running_host, ann, rejected["id"], "reject", "no").status_code == 201
    assert wait_for(admin, running_host, approved["id"])["status"] == "succeeded"
    assert wait_for(admin, running_host, rejected["id"])["status"] == "cancelled"
