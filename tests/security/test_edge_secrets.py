"""#18 attack tests: keys and secrets never reach the activity log, logs, errors or task
JSON; pipeline keys are keyed hashes with names, expiry, rotation and revocation."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import requests
from psycopg.rows import dict_row

from shared.redact import redact_text, redact_url
from tests.conftest import RunningHost
from tests.pipeline.test_cancel_and_failures import FakeAgent
from tests.pipeline.test_pipeline_e2e import make_env, wait_for

SECRET = "s3cr3t-" + uuid.uuid4().hex


def rows(host: RunningHost, sql: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(host.database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, args).fetchall()


def everything_recorded(host: RunningHost) -> str:
    """Every table a reader can see through the API, as one string."""
    parts = [json.dumps(rows(host, f"SELECT * FROM {table}"), default=str)
             for table in ("activity_log", "notification_deliveries")]
    parts.append(json.dumps(rows(host, "SELECT parameters, error, reason, result, approval"
                                 " FROM tasks"), default=str))
    return "\n".join(parts)


@pytest.mark.parametrize("url", [
    "https://x.blob.core.windows.net/c/p.zip?sv=2024&se=2030&sp=r&sig=" + SECRET,
    "https://api.example.com/hook?code=" + SECRET + "&x=1",
    "https://user:" + SECRET + "@example.com/a",
    "https://e.com/?access_token=" + SECRET,
    "https://e.com/?X-Amz-Signature=" + SECRET,
])
def test_key_like_url_parts_are_redacted(url: str) -> None:
    assert SECRET not in redact_url(url)
    assert SECRET not in redact_text(f"failed to GET {url} (403)")


def test_a_key_in_the_url_is_refused_and_never_recorded(running_host: RunningHost) -> None:
    admin = running_host.session("edge-sec-admin", ("admin",))
    project, _ = make_env(admin, running_host)
    # a valid function key, sent in the query string to a route it may not use
    r = requests.get(running_host.url(f"/api/projects/{project}/roles"),
                     params={"code": running_host.function_key}, timeout=30)
    assert r.status_code == 401 and "header" in r.json()["detail"]
    # a signed-in stranger with a key-like query value: refused, and the URL is redacted
    stranger = running_host.session("edge-sec-stranger", ())
    r = stranger.get(running_host.url(f"/api/projects/{project}/roles"),
                     params={"sig": SECRET})
    assert r.status_code == 403
    recorded = everything_recorded(running_host)
    assert running_host.function_key not in recorded and SECRET not in recorded
    denied = [e for e in admin.get(running_host.url(
        f"/api/activity?project={project}")).json()["items"]
        if e["action"] == "access.denied"]
    assert denied and "sig=REDACTED" in denied[0]["details"]["url"]


def test_a_package_url_is_shown_redacted_and_kept_for_the_deploy_only(
        running_host: RunningHost) -> None:
    admin = running_host.session("edge-sec-deployer", ("admin",))
    project, env = make_env(admin, running_host)
    package = f"https://acct.blob.core.windows.net/pkgs/app.zip?sp=r&se=2030&sig={SECRET}"
    task = admin.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/deployments"),
        json={"version": "5", "packageUrl": package}).json()
    assert SECRET not in json.dumps(task)
    assert task["parameters"]["packageUrl"].endswith("sig=REDACTED")
    done = wait_for(admin, running_host, task["id"])
    logs = admin.get(running_host.url(f"/api/tasks/{task['id']}/logs")).json()
    assert SECRET not in json.dumps(done) + json.dumps(logs)
    assert SECRET not in everything_recorded(running_host)
    [stored] = rows(running_host, "SELECT secrets FROM tasks WHERE id = %s", task["id"])
    assert stored["secrets"]["packageUrl"] == package  # what set_version reads


def test_secret_script_parameters_are_masked_but_reach_the_agent(
        running_host: RunningHost) -> None:
    admin = running_host.session("edge-sec-scripter", ("admin",))
    agent = FakeAgent(running_host, admin, ["linux"])
    project, env = make_env(admin, running_host, {"type": "agent", "pool": agent.pool,
                                                   "labels": ["linux"]})
    assert admin.post(running_host.url(f"/api/projects/{project}/scripts"), json={
        "name": "rotate", "argv": ["./rotate.sh", "--token={token}", "--user={user}"],
        "parameters": [{"name": "token", "secret": True}, {"name": "user"}],
    }).status_code == 201
    task = admin.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/scripts/rotate/runs"),
        json={"parameters": {"token": SECRET, "user": "svc"}}).json()
    assert SECRET not in json.dumps(task)
    assert task["parameters"]["parameters"] == {"token": "***", "user": "svc"}
    assert task["parameters"]["argv"] == ["./rotate.sh", "--token=***", "--user=svc"]
    job = agent.next_job(wait=10)
    assert job is not None and job["payload"]["argv"][1] == f"--token={SECRET}"
    # the agent echoes argv and fails quoting it: neither reaches readers
    agent.http.post(running_host.url(f"/api/agent/jobs/{job['id']}/logs"),
                    json={"lines": [f"$ ./rotate.sh --token={SECRET} --user=svc"]})
    agent.result(job["id"], "failed", error=f"rotate.sh --token={SECRET} exited with 1")
    done = wait_for(admin, running_host, task["id"])
    logs = admin.get(running_host.url(f"/api/tasks/{task['id']}/logs")).json()
    assert done["status"] == "failed"
    assert SECRET not in json.dumps(done) + json.dumps(logs)
    assert any("--token=***" in line["text"] for line in logs["items"])
    assert SECRET not in everything_recorded(running_host)


def test_a_short_secret_parameter_is_refused(running_host: RunningHost) -> None:
    admin = running_host.session("edge-sec-short", ("admin",))
    project, env = make_env(admin, running_host)
    admin.post(running_host.url(f"/api/projects/{project}/scripts"), json={
        "name": "s", "argv": ["./s.sh", "{pin}"], "parameters": [
            {"name": "pin", "secret": True}]})
    r = admin.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/scripts/s/runs"),
        json={"parameters": {"pin": "7"}})
    assert r.status_code == 422
    assert rows(running_host, "SELECT 1 FROM tasks t JOIN projects p ON p.id = t.project_id"
                " WHERE p.slug = %s", project) == []


def test_pipeline_keys_are_keyed_hashes_listed_without_secrets(
        running_host: RunningHost) -> None:
    admin = running_host.session("edge-keys-admin", ("admin",))
    name = f"ci-{uuid.uuid4().hex[:6]}"
    created = admin.post(running_host.url("/api/pipeline-keys"),
                         json={"name": name, "expiresInDays": 30})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    key = created.json()["key"]
    [row] = rows(running_host, "SELECT key_hash FROM pipeline_keys WHERE name = %s", name)
    assert row["key_hash"] != hashlib.sha256(key.encode()).hexdigest()  # HMAC, not SHA-256
    listing = admin.get(running_host.url("/api/pipeline-keys")).text
    assert key not in listing and row["key_hash"] not in listing and name in listing
    assert key not in everything_recorded(running_host)
    pipe = requests.Session()
    pipe.headers["x-functions-key"] = key
    assert pipe.get(running_host.url("/api/me")).status_code == 200
    # a duplicate active name is refused
    assert admin.post(running_host.url("/api/pipeline-keys"),
                      json={"name": name}).status_code == 409
    # rotation without grace: the old key stops at once, the new one works
    rotated = admin.post(running_host.url(
        f"/api/pipeline-keys/{created.json()['id']}/rotate"), json={"graceMinutes": 0})
    new_key = rotated.json()["key"]
    assert pipe.get(running_host.url("/api/me")).status_code == 401
    pipe.headers["x-functions-key"] = new_key
    assert pipe.get(running_host.url("/api/me")).status_code == 200
    # revoked: refused
    assert admin.delete(running_host.url(
        f"/api/pipeline-keys/{created.json()['id']}")).status_code == 204
    assert pipe.get(running_host.url("/api/me")).status_code == 401


def test_an_expired_pipeline_key_is_refused(running_host: RunningHost) -> None:
    admin = running_host.session("edge-keys-expiry", ("admin",))
    created = admin.post(running_host.url("/api/pipeline-keys"),
                         json={"name": f"old-{uuid.uuid4().hex[:6]}", "expiresInDays": 1})
    key = created.json()["key"]
    with psycopg.connect(running_host.database_url) as conn:
        conn.execute("UPDATE pipeline_keys SET expires_at = now() - %s WHERE id = %s",
                     (timedelta(seconds=1), created.json()["id"]))
    r = requests.get(running_host.url("/api/me"), headers={"x-functions-key": key},
                     timeout=30)
    assert r.status_code == 401


def test_only_global_admins_manage_pipeline_keys(running_host: RunningHost) -> None:
    reader = running_host.session("edge-keys-nobody", ())
    name = f"sneaky-{uuid.uuid4().hex[:6]}"
    assert reader.post(running_host.url("/api/pipeline-keys"),
                       json={"name": name}).status_code == 403
    assert rows(running_host, "SELECT 1 FROM pipeline_keys WHERE name = %s", name) == []
