"""Role revocation stays in its scope; revoked or disabled agents stay out; tokens are
single-use; a revoked agent's jobs fail over at once."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import requests

from tests.conftest import RunningHost
from tests.security.conftest import Victim, own_project
from tests.waiting import wait_until


def test_project_admin_cannot_revoke_another_projects_or_a_global_role_assignment(
        victim: Victim, mallory: Any, running_host: RunningHost) -> None:
    admin = victim.admin
    theirs = admin.post(victim.api(f"/projects/{victim.project}/roles"), json={
        "principalType": "user", "principalId": "bob", "role": "operator"}).json()
    global_one = admin.post(victim.api("/roles"), json={
        "principalType": "group", "principalId": f"ops-{uuid.uuid4().hex[:4]}",
        "role": "reader"}).json()
    evil = own_project(running_host, mallory)
    for assignment in (theirs, global_one):
        r = mallory.delete(victim.api(f"/projects/{evil}/roles/{assignment['id']}"))
        assert r.status_code == 404, r.text
        assert r.json()["field"] == "assignment"
    # a global admin cannot use a project's route for a global one, nor the reverse
    assert admin.delete(victim.api(f"/projects/{victim.project}/roles/{global_one['id']}")
                        ).status_code == 404
    assert admin.delete(victim.api(f"/roles/{theirs['id']}")).status_code == 404
    ids = {a["id"] for a in admin.get(victim.api(f"/projects/{victim.project}/roles")
                                      ).json()["items"]}
    assert theirs["id"] in ids
    assert global_one["id"] in {a["id"] for a in admin.get(victim.api("/roles")).json()
                                ["items"]}
    assert admin.delete(victim.api(f"/roles/{global_one['id']}")).status_code == 204
    assert admin.delete(victim.api(f"/projects/{victim.project}/roles/{theirs['id']}")
                        ).status_code == 204


def _register(victim: Victim, pool: str, name: str, token: str | None = None
              ) -> requests.Response:
    token = token or victim.admin.post(victim.api(f"/pools/{pool}/registration-tokens"),
                                       json={}).json()["token"]
    return requests.post(victim.api("/agent/register"), json={"token": token, "name": name},
                         timeout=30)


def test_registering_under_a_revoked_or_disabled_agents_name_never_revives_it(
        victim: Victim) -> None:
    pool = f"rr-{uuid.uuid4().hex[:4]}"
    assert victim.admin.post(victim.api("/pools"), json={"name": pool}).status_code == 201
    for action in ("revoke", "disable"):
        name = f"box-{action}"
        first = _register(victim, pool, name)
        assert first.status_code == 201, first.text
        key = first.json()["key"]
        r = victim.admin.post(victim.api(f"/pools/{pool}/agents/{name}/{action}"))
        assert r.status_code == 200, r.text
        token = victim.admin.post(victim.api(f"/pools/{pool}/registration-tokens"),
                                  json={}).json()["token"]
        again = _register(victim, pool, name, token)
        assert again.status_code == 409, again.text
        assert again.json()["field"] == "name" and action[:-1] in again.json()["detail"]
        [row] = victim.sql("SELECT a.* FROM agents a JOIN agent_pools p ON p.id = a.pool_id"
                           " WHERE p.name = %s AND a.name = %s", pool, name)
        assert row["enabled"] is False
        assert (row["revoked_at"] is not None) == (action == "revoke")
        beat = requests.post(victim.api("/agent/heartbeat"), json={"running": []},
                             headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert beat.status_code == (401 if action == "revoke" else 200)
        # the refused attempt did not use the token up
        assert _register(victim, pool, f"{name}-new", token).status_code == 201


def test_registration_tokens_are_single_use_unless_created_with_max_uses(
        victim: Victim) -> None:
    pool = f"tk-{uuid.uuid4().hex[:4]}"
    admin = victim.admin
    assert admin.post(victim.api("/pools"), json={"name": pool}).status_code == 201
    r = admin.post(victim.api(f"/pools/{pool}/registration-tokens"), json={"multiUse": True})
    assert r.status_code == 422 and r.json()["field"] == "maxUses", r.text
    single = admin.post(victim.api(f"/pools/{pool}/registration-tokens"), json={}).json()
    assert single["maxUses"] is None and single["multiUse"] is False
    assert [_register(victim, pool, f"s{i}", single["token"]).status_code
            for i in range(2)] == [201, 401]
    counted = admin.post(victim.api(f"/pools/{pool}/registration-tokens"),
                         json={"maxUses": 2}).json()
    assert [_register(victim, pool, f"m{i}", counted["token"]).status_code
            for i in range(3)] == [201, 201, 401]


def test_revoking_an_agent_fails_its_running_job_over_at_once(
        victim: Victim, running_host: RunningHost) -> None:
    """The real agent runs a script that waits; revoking it fails the task at once (the
    lease would have lasted a minute), with the true reason."""
    started = victim.state / f"started-{uuid.uuid4().hex[:4]}"
    admin = victim.admin
    r = admin.post(victim.api(f"/projects/{victim.project}/scripts"), json={
        "name": f"hang-{uuid.uuid4().hex[:4]}", "argv": [
            sys.executable, "-c",
            f"import time; open({str(started)!r}, 'w'); time.sleep(120)"]})
    assert r.status_code == 201, r.text
    script = r.json()["name"]
    task = admin.post(victim.api(f"/projects/{victim.project}/environments/dev/scripts/"
                                 f"{script}/runs"), json={"parameters": {}}).json()
    wait_until(started.exists, "the agent to start the script")
    agent = admin.get(victim.api(f"/pools/{victim.pool}/agents")).json()["items"][0]
    r = admin.post(victim.api(f"/pools/{victim.pool}/agents/{agent['id']}/revoke"))
    assert r.status_code == 200, r.text
    done = victim.wait(task["id"], timeout=10)
    assert done["status"] == "failed", done
    assert f"agent {agent['name']} was revoked" in done["error"]
    [job] = [j for j in victim.jobs_of(victim.project) if str(j["task_id"]) == task["id"]]
    assert job["status"] == "failed" and "revoked" in job["error"]
