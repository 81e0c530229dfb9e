"""The task pipeline end to end on the local host over real HTTP:
API → Service Bus session → Durable orchestration → Postgres → terminal state."""

from __future__ import annotations

import itertools
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import RunningHost
from tests.waiting import WaitTimeout, wait_until

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def wait_for(session: Any, host: RunningHost, task_id: str, statuses: set[str] = TERMINAL,
             timeout: float = 30) -> dict[str, Any]:
    seen: list[str] = []

    def arrived() -> dict[str, Any] | None:
        task = session.get(host.url(f"/api/tasks/{task_id}")).json()
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in statuses:
            task["_seen"] = seen
            return dict(task)
        return None

    try:
        return wait_until(arrived, f"task {task_id} to reach {sorted(statuses)}", timeout)
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc}; statuses seen: {seen}") from None


@pytest.fixture(scope="module")
def admin(running_host: RunningHost) -> Any:
    return running_host.session("alice", ("admin",))


def make_env(admin: Any, host: RunningHost, target: dict[str, Any] | None = None,
             slug: str = "dev") -> tuple[str, str]:
    project = f"p-{uuid.uuid4().hex[:8]}"
    r = admin.post(host.url("/api/projects"), json={"slug": project, "name": "Shop"})
    assert r.status_code == 201, r.text
    r = admin.post(host.url(f"/api/projects/{project}/environments"),
                   json={"slug": slug, "name": "Dev", "target": target or {"type": "noop"}})
    assert r.status_code == 201, r.text
    return project, slug


def test_deploy_runs_to_succeeded_with_progress_and_logs(running_host: RunningHost,
                                                         admin: Any) -> None:
    project, env = make_env(admin, running_host)
    r = admin.post(running_host.url(f"/api/projects/{project}/environments/{env}/deployments"),
                   json={"version": "1.4.2"})
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/api/tasks/{r.json()['id']}"
    task = wait_for(admin, running_host, r.json()["id"])
    assert task["status"] == "succeeded", task
    assert task["progress"] == 100 and task["result"] == {"version": "1.4.2"}
    assert task["startedAt"] and task["finishedAt"] and task["requestedBy"] == "alice"
    assert task["requestedByName"] == "alice@example.com"
    logs = admin.get(running_host.url(f"/api/tasks/{task['id']}/logs")).json()
    texts = [line["text"] for line in logs["items"]]
    assert any("would deploy 1.4.2" in t for t in texts) and texts[-1].startswith("succeeded")
    assert [x["seq"] for x in logs["items"]] == list(range(1, len(texts) + 1))
    later = admin.get(running_host.url(f"/api/tasks/{task['id']}/logs?after=1")).json()
    assert [x["seq"] for x in later["items"]] == list(range(2, len(texts) + 1))
    actions = [e["action"] for e in admin.get(running_host.url(
        f"/api/activity?project={project}")).json()["items"]]
    assert {"task.created", "task.running", "task.succeeded"} <= set(actions)


def test_operations_on_one_environment_run_one_at_a_time_in_arrival_order(
        running_host: RunningHost, admin: Any) -> None:
    project, env = make_env(admin, running_host)
    url = running_host.url(f"/api/projects/{project}/environments/{env}/deployments")
    ids = [admin.post(url, json={"version": f"1.0.{i}"}).json()["id"] for i in range(20)]
    tasks = [wait_for(admin, running_host, i) for i in ids]
    assert all(t["status"] == "succeeded" for t in tasks)
    ordered = sorted(tasks, key=lambda t: t["seq"])
    for before, after in itertools.pairwise(ordered):
        assert before["finishedAt"] <= after["startedAt"], (before, after)


def test_operations_on_many_environments_all_complete(running_host: RunningHost,
                                                      admin: Any) -> None:
    """20 environments at once (their overlap is shown with held agent jobs in
    test_cancel_and_failures)."""
    envs = [make_env(admin, running_host) for _ in range(20)]

    def submit(pe: tuple[str, str]) -> str:
        project, env = pe
        r = admin.post(running_host.url(
            f"/api/projects/{project}/environments/{env}/deployments"), json={"version": "2"})
        return r.json()["id"]

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(submit, envs))
    tasks = [wait_for(admin, running_host, i) for i in ids]
    assert {t["status"] for t in tasks} == {"succeeded"}


def test_idempotency_key_returns_the_same_task_and_runs_once(running_host: RunningHost,
                                                             admin: Any) -> None:
    project, env = make_env(admin, running_host)
    url = running_host.url(f"/api/projects/{project}/environments/{env}/deployments")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = admin.post(url, json={"version": "3"}, headers=key)
    again = admin.post(url, json={"version": "3"}, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    wait_for(admin, running_host, first.json()["id"])
    listed = admin.get(running_host.url(f"/api/tasks?project={project}")).json()["items"]
    assert len(listed) == 1


def test_idempotency_key_reused_for_a_different_request_answers_422_naming_the_key(
        running_host: RunningHost, admin: Any) -> None:
    project, env = make_env(admin, running_host)
    base = f"/api/projects/{project}/environments/{env}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = admin.post(running_host.url(f"{base}/deployments"), json={"version": "14.0.1"},
                       headers=key)
    assert first.status_code == 202, first.text
    other_body = admin.post(running_host.url(f"{base}/deployments"),
                            json={"version": "14.0.2"}, headers=key)
    other_route = admin.post(running_host.url(f"{base}/backups"), json={}, headers=key)
    for refused in (other_body, other_route):
        assert refused.status_code == 422, refused.text
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert refused.json()["field"] == "Idempotency-Key"
        assert key["Idempotency-Key"] in refused.json()["detail"]
        assert "Idempotent-Replayed" not in refused.headers
    # The same request in another key order is still the same request.
    same = admin.post(running_host.url(f"{base}/deployments"),
                      data='{ "version" : "14.0.1" }',
                      headers={**key, "Content-Type": "application/json"})
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]
    listed = admin.get(running_host.url(f"/api/tasks?project={project}")).json()["items"]
    assert [t["id"] for t in listed] == [first.json()["id"]]


def test_sandbox_create_replayed_after_it_ran_answers_the_same_task(
        running_host: RunningHost, admin: Any) -> None:
    project, env = make_env(admin, running_host)
    url = running_host.url(f"/api/projects/{project}/environments/{env}/sandboxes")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = admin.post(url, json={"name": "pr-1", "ttlHours": 2}, headers=key)
    assert first.status_code == 202, first.text
    assert wait_for(admin, running_host, first.json()["id"])["status"] == "succeeded"
    again = admin.post(url, json={"name": "pr-1", "ttlHours": 2}, headers=key)
    assert again.status_code == 202, again.text  # not 409: the name is taken by this task
    assert again.json()["id"] == first.json()["id"]


def test_duplicate_service_bus_delivery_starts_one_orchestration(running_host: RunningHost,
                                                                 admin: Any) -> None:
    """Re-sending the task's message (as the sweeper or a redelivery would) is a no-op."""
    from shared.bus import BusMessage
    from shared.bus.local import LocalServiceBus

    project, env = make_env(admin, running_host)
    task = admin.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/deployments"), json={"version": "4"}).json()
    wait_for(admin, running_host, task["id"])
    key = json.loads((running_host.home / "keys.json").read_text())["systemKeys"]["servicebus"]
    bus = LocalServiceBus("tasks", f"Endpoint={running_host.base_url}/servicebus/;"
                          f"SharedAccessKeyName=localhost;SharedAccessKey={key};"
                          "UseDevelopmentEmulator=true")
    for _ in range(3):
        bus.send(BusMessage(session_id=task["environmentId"],
                            message_id=f"{task['id']}-again-{uuid.uuid4().hex[:4]}",
                            body={"taskId": task["id"], "operation": "deploy",
                                  "environmentId": task["environmentId"]}))
    # Barrier: the next deploy's message joins the same session after the duplicates, so
    # it is handled only once every duplicate has been (completed, or retried until it
    # dead-letters). Only then is "no second run" a fact and not a race.
    barrier = admin.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/deployments"), json={"version": "5"}).json()
    assert wait_for(admin, running_host, barrier["id"])["status"] == "succeeded"
    dead = requests.get(running_host.url("/admin/servicebus/tasks/deadletters"), timeout=10,
                        headers={"x-functions-key": running_host.master_key}).json()["messages"]
    assert not [m for m in dead if m["messageId"].startswith(task["id"])], dead
    with psycopg.connect(running_host.database_url) as conn:
        runs = conn.execute("SELECT count(*) FROM activity_log WHERE task_id = %s"
                            " AND action = 'task.succeeded'", (task["id"],)).fetchone()[0]
    assert runs == 1
    assert admin.get(running_host.url(f"/api/tasks/{task['id']}")).json()["status"] == \
        "succeeded"


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("deployments", b"{not json", 400, "body"),
    ("deployments", b"[]", 400, "body"),
    ("deployments", b"{}", 422, "version"),
    ("deployments", b'{"version": "1 ; rm -rf /"}', 422, "version"),
    ("deployments", b'{"version": "1", "extra": 1}', 422, "extra"),
    ("restores", b'{"backupId": "not-a-uuid"}', 422, "backupId"),
    ("restarts", b'{"workload": "Bad_Name"}', 422, "workload"),
    ("sandboxes", b'{"name": "sb", "ttlHours": 0}', 422, "ttlHours"),
])
def test_bad_input_gets_a_problem_naming_the_field_and_writes_nothing(
        running_host: RunningHost, admin: Any, path: str, body: bytes, status: int,
        field: str) -> None:
    project, env = make_env(admin, running_host)
    r = admin.post(running_host.url(f"/api/projects/{project}/environments/{env}/{path}"),
                   data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert admin.get(running_host.url(f"/api/tasks?project={project}")).json()["items"] == []


def test_unknown_project_environment_and_task_are_404(running_host: RunningHost,
                                                     admin: Any) -> None:
    project, _ = make_env(admin, running_host)
    assert admin.post(running_host.url(f"/api/projects/{project}/environments/nope/backups"),
                      json={}).status_code == 404
    assert admin.get(running_host.url("/api/projects/nope")).status_code == 404
    assert admin.get(running_host.url(f"/api/tasks/{uuid.uuid4()}")).status_code == 404


def test_authentication_and_roles(running_host: RunningHost, admin: Any) -> None:
    import requests

    project, env = make_env(admin, running_host)
    url = running_host.url(f"/api/projects/{project}/environments/{env}/deployments")
    anonymous = requests.post(url, json={"version": "1"})
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"].startswith("application/problem+json")
    reader = running_host.session("rita", ("reader",))
    assert reader.get(running_host.url(f"/api/projects/{project}")).status_code == 200
    assert reader.post(url, json={"version": "1"}).status_code == 403
    stranger = running_host.session("sam", ())
    assert stranger.get(running_host.url(f"/api/projects/{project}")).status_code == 403
    forged = requests.post(url, json={"version": "1"},
                           headers={"x-ms-client-principal": "eyJ1c2VySWQiOiJ4In0="})
    assert forged.status_code == 401  # the host strips client-supplied principals
    wrong_key = requests.post(url, json={"version": "1"}, headers={"x-functions-key": "nope"})
    assert wrong_key.status_code == 401


def test_pipeline_key_acts_as_a_named_service_principal(running_host: RunningHost,
                                                        admin: Any) -> None:
    from shared.store import projects as project_store
    from shared.store import roles

    project, env = make_env(admin, running_host)
    pipeline = running_host.pipeline()
    url = running_host.url(f"/api/projects/{project}/environments/{env}/deployments")
    assert pipeline.post(url, json={"version": "5"}).status_code == 403  # no role yet
    with psycopg.connect(running_host.database_url, row_factory=psycopg.rows.dict_row) as conn:
        roles.assign_role(conn, project_id=project_store.get_project(conn, project).id,
                          principal_type="service", principal_id="default", role="operator",
                          actor="test")
    r = pipeline.post(url, json={"version": "5"})
    assert r.status_code == 202, r.text
    task = wait_for(pipeline, running_host, r.json()["id"])
    assert task["status"] == "succeeded" and task["requestedBy"] == "service:default"


def test_names_of_only_spaces_or_with_direction_controls_are_refused_in_words(
        running_host: RunningHost, admin: Any) -> None:
    for name in ("   ", "invoice\u202efdp.exe", "\u2066x\u2069"):
        slug = f"n-{uuid.uuid4().hex[:8]}"
        r = admin.post(running_host.url("/api/projects"), json={"slug": slug, "name": name})
        assert r.status_code == 422, (name, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["field"] == "name"
        assert r.json()["detail"] == ("name: use visible characters: not only spaces, no "
                                      "control or text-direction characters")
        assert admin.get(running_host.url(f"/api/projects/{slug}")).status_code == 404
    fine = admin.post(running_host.url("/api/projects"),
                      json={"slug": f"n-{uuid.uuid4().hex[:8]}", "name": "Café 🚀 shop"})
    assert fine.status_code == 201, fine.text


def test_a_broken_pattern_is_explained_in_words_not_as_a_regular_expression(
        running_host: RunningHost, admin: Any) -> None:
    project, env = make_env(admin, running_host)
    r = admin.post(running_host.url(f"/api/projects/{project}/environments/{env}/sandboxes"),
                   json={"name": "PR-UPPER", "ttlHours": 4})
    assert r.status_code == 422 and r.json()["field"] == "name"
    assert r.json()["detail"].startswith("name: use lower-case letters, digits and hyphens")
    assert "^" not in r.text and "[a-z0-9]" not in r.text
