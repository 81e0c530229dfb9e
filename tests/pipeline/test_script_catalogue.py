"""The script catalogue over HTTP: an admin changes a script in place (its name stays, the
next run resolves the new argv), bad definitions answer 422 naming the field and change
nothing, and only admins may change it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHost
from tests.pipeline.test_pipeline_e2e import make_env, wait_for


@pytest.fixture
def admin(running_host: RunningHost) -> Any:
    return running_host.session("alice", ("admin",))


REINDEX = {"name": "reindex", "description": "Rebuild the index",
           "argv": ["./reindex.sh", "--batch", "{batch}"],
           "parameters": [{"name": "batch", "type": "integer", "default": 100}]}


def _catalogue(host: RunningHost, who: Any, project: str) -> dict[str, Any]:
    r = who.get(host.url(f"/api/projects/{project}/scripts"))
    assert r.status_code == 200, r.text
    return {s["name"]: s for s in r.json()["items"]}


def test_an_admin_changes_a_script_and_the_next_run_uses_the_new_argv(
        running_host: RunningHost, admin: Any) -> None:
    host = running_host
    project, env = make_env(admin, host)
    assert admin.post(host.url(f"/api/projects/{project}/scripts"), json=REINDEX).status_code == 201
    changed = {**REINDEX, "description": "Rebuild one index",
               "argv": ["./reindex.sh", "--index", "{index}", "--batch", "{batch}"],
               "parameters": [*REINDEX["parameters"],
                              {"name": "index", "type": "string", "enum": ["orders", "users"]}],
               "timeoutSeconds": 120}
    r = admin.put(host.url(f"/api/projects/{project}/scripts/reindex"), json=changed)
    assert r.status_code == 200, r.text
    assert r.json()["argv"] == changed["argv"] and r.json()["timeoutSeconds"] == 120
    stored = _catalogue(host, admin, project)["reindex"]
    assert stored["description"] == "Rebuild one index"
    assert [p["name"] for p in stored["parameters"]] == ["batch", "index"]

    run = admin.post(host.url(f"/api/projects/{project}/environments/{env}/scripts/reindex/runs"),
                     json={"parameters": {"index": "orders"}})
    assert run.status_code == 202, run.text
    task = wait_for(admin, host, run.json()["id"])
    want = ["./reindex.sh", "--index", "orders", "--batch", "100"]
    assert task["plan"]["script"]["argv"] == want, task

    activity = admin.get(host.url(f"/api/activity?project={project}")).json()["items"]
    assert any(a["action"] == "script.updated" and a["details"] == {"script": "reindex"}
               for a in activity)


@pytest.mark.parametrize(("body", "field"), [
    ({**REINDEX, "name": "renamed"}, "name"),
    ({**REINDEX, "argv": ["./reindex.sh", "{missing}"]}, "argv"),
    ({**REINDEX, "parameters": [{"name": "batch", "pattern": "("}]}, "parameters.0.pattern"),
    ({**REINDEX, "parameters": [{"name": "batch"}, {"name": "batch"}]}, "parameters"),
    ({**REINDEX, "argv": []}, "argv"),
    ({**REINDEX, "parameters": [{"name": "batch", "type": "date"}]}, "parameters.0.type"),
])
def test_a_bad_change_is_refused_naming_the_field_and_changes_nothing(
        running_host: RunningHost, admin: Any, body: dict[str, Any], field: str) -> None:
    host = running_host
    project, _ = make_env(admin, host)
    assert admin.post(host.url(f"/api/projects/{project}/scripts"), json=REINDEX).status_code == 201
    r = admin.put(host.url(f"/api/projects/{project}/scripts/reindex"), json=body)
    assert r.status_code == 422, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert (r.json().get("field") or "") == field, r.json()
    assert _catalogue(host, admin, project)["reindex"]["argv"] == REINDEX["argv"]


def test_changing_a_missing_script_is_404_and_an_operator_is_refused(
        running_host: RunningHost, admin: Any) -> None:
    host = running_host
    project, _ = make_env(admin, host)
    missing = admin.put(host.url(f"/api/projects/{project}/scripts/reindex"), json=REINDEX)
    assert missing.status_code == 404 and missing.json()["field"] == "script"
    assert admin.post(host.url(f"/api/projects/{project}/scripts"), json=REINDEX).status_code == 201
    assert admin.post(host.url(f"/api/projects/{project}/roles"), json={
        "principalType": "user", "principalId": "olga", "role": "operator"}).status_code == 201
    operator = host.session("olga", ())
    refused = operator.put(host.url(f"/api/projects/{project}/scripts/reindex"),
                           json={**REINDEX, "description": "mine now"})
    assert refused.status_code == 403, refused.text
    assert _catalogue(host, admin, project)["reindex"]["description"] == "Rebuild the index"
