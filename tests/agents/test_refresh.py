"""Refreshing a lower environment from a higher one, end to end: a real agent, the local
host and real Postgres. Staging is restored from production's backup, a safety backup of
staging is taken first, and the masking script named in the request runs right after —
a failing masking script fails the refresh with what to do next. Requests that cannot
work (protected target, gone artifact, unknown source) are refused before any task."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.agents.conftest import ControlPlane, start_agent, stop_agent, url_form
from tests.agents.test_roundtrip import _client_tools_fit
from tests.conftest import drop_database, server_url, with_database
from tests.waiting import wait_until

MASK = ("import sys, psycopg; c = psycopg.connect(sys.argv[1]);"
        " c.execute(\"UPDATE people SET email = 'masked-' || id || '@example.invalid'\");"
        " c.commit(); print('masked', c.execute('SELECT count(*) FROM people').fetchone()[0])")


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    admin = server_url()
    reason = _client_tools_fit(admin)
    if reason is not None:
        pytest.skip(reason)
    names = [f"refresh_{which}_{secrets.token_hex(3)}" for which in ("prod", "stage")]
    urls = []
    for name, rows in zip(names, (["ann@corp.example", "bob@corp.example"], ["old@test"]),
                          strict=True):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = url_form(with_database(admin, name))
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL)")
            for i, email in enumerate(rows, 1):
                conn.execute("INSERT INTO people VALUES (%s, %s)", (i, email))
        urls.append(url)
    yield urls[0], urls[1]
    for name in names:
        drop_database(admin, name)


def _emails(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT email FROM people ORDER BY id")]


def _wait(plane: ControlPlane, task_id: str, timeout: float = 120) -> dict[str, Any]:
    return dict(wait_until(
        lambda: (t := plane.request("GET", f"/api/tasks/{task_id}", headers=plane.admin).json())
        ["status"] in ("succeeded", "failed", "cancelled", "timed_out") and t,
        f"task {task_id} to end", timeout))


def _setup(plane: ControlPlane, pool: str) -> str:
    slug = f"rf-{secrets.token_hex(3)}"
    assert plane.request("POST", "/api/projects", headers=plane.admin,
                         json={"slug": slug, "name": slug}).status_code == 201
    for env in ("prod", "staging"):
        resp = plane.request("POST", f"/api/projects/{slug}/environments", headers=plane.admin,
                             json={"slug": env, "name": env, "database": {"connection": env},
                                   "target": {"type": "agent", "pool": pool}})
        assert resp.status_code == 201, resp.text
    for name, code in (("mask-pii", MASK), ("mask-broken", "import sys; sys.exit(3)")):
        resp = plane.request("POST", f"/api/projects/{slug}/scripts", headers=plane.admin,
                             json={"name": name, "argv": [sys.executable, "-c", code, "{db}"],
                                   "parameters": [{"name": "db"}], "timeoutSeconds": 60})
        assert resp.status_code == 201, resp.text
    return slug


def test_refresh_restores_the_source_backup_masks_it_and_keeps_a_safety_backup(
        control_plane: ControlPlane, two_databases: tuple[str, str], tmp_path: Path) -> None:
    plane, (prod, stage) = control_plane, two_databases
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[],
                        connections={"prod": prod, "staging": stage})
    try:
        slug = _setup(plane, pool)
        env = f"/api/projects/{slug}/environments"
        backup = _wait(plane, plane.request("POST", f"{env}/prod/backups", headers=plane.admin,
                                            json={}).json()["id"])
        assert backup["status"] == "succeeded", (backup, agent.output()[-2000:])

        resp = plane.request("POST", f"{env}/staging/refreshes", headers=plane.admin,
                             json={"sourceEnvironment": "prod", "maskScript": "mask-pii",
                                   "maskParameters": {"db": stage}})
        assert resp.status_code == 202, resp.text
        (prod_backup,) = plane.request("GET", f"{env}/prod/backups",
                                       headers=plane.admin).json()["items"]
        assert resp.json()["parameters"]["backupId"] == prod_backup["id"]  # latest by default
        task = _wait(plane, resp.json()["id"])
        assert task["status"] == "succeeded", (task, agent.output()[-3000:])
        assert task["reason"] == (f"refreshed staging from prod backup {prod_backup['id'][:8]},"
                                  " masked by mask-pii")
        assert _emails(stage) == ["masked-1@example.invalid", "masked-2@example.invalid"]
        assert _emails(prod) == ["ann@corp.example", "bob@corp.example"]  # source untouched
        staging_backups = plane.request("GET", f"{env}/staging/backups",
                                        headers=plane.admin).json()["items"]
        assert [b["kind"] for b in staging_backups] == ["safety"]
        assert task["result"]["safetyBackup"]["id"] == staging_backups[0]["id"]
        logs = plane.log_text(task["id"])
        assert "sha256 verified" in logs and "masked 2" in logs

        # a failing masking script fails the refresh, saying what state staging is in
        resp = plane.request("POST", f"{env}/staging/refreshes", headers=plane.admin,
                             json={"sourceEnvironment": "prod", "maskScript": "mask-broken",
                                   "maskParameters": {"db": stage}})
        assert resp.status_code == 202, resp.text
        failed = _wait(plane, resp.json()["id"])
        assert failed["status"] == "failed", failed
        assert "the masking script mask-broken failed" in failed["error"]
        assert "unmasked data" in failed["error"] and "safety backup" in failed["error"]
    finally:
        stop_agent(agent)


def test_refresh_requests_that_cannot_work_are_refused_before_any_task(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    from shared.store import backups as backup_store

    plane = control_plane
    pool = plane.pool()
    slug = _setup(plane, pool)
    env = f"/api/projects/{slug}/environments"

    def refused(body: dict[str, Any], target: str = "staging") -> tuple[int, str, str]:
        resp = plane.request("POST", f"{env}/{target}/refreshes", headers=plane.admin,
                             json=body)
        assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.text
        return resp.status_code, resp.json().get("field"), resp.json()["detail"]

    status, field, detail = refused({"sourceEnvironment": "prod"})
    assert (status, field) == (422, "sourceEnvironment") and "no backup yet" in detail
    assert refused({"sourceEnvironment": "nowhere"})[:2] == (404, "sourceEnvironment")
    assert refused({"sourceEnvironment": "staging"})[:2] == (422, "sourceEnvironment")
    assert refused({"sourceEnvironment": "prod", "bogus": 1})[0] == 422

    # a backup row whose artifact is gone (expired or deleted from storage)
    with plane.db.transaction() as conn:
        prod_id = conn.execute("SELECT e.id FROM environments e JOIN projects p ON"
                               " p.id = e.project_id WHERE p.slug = %s AND e.slug = 'prod'",
                               (slug,)).fetchone()["id"]
        gone = backup_store.record_backup(
            conn, environment_id=prod_id, task_id=None,
            location=f"local:backups/{slug}/gone.dump", size_bytes=1, sha256="0" * 64)
    status, field, detail = refused({"sourceEnvironment": "prod"})
    assert (status, field) == (409, "backupId") and "no artifact any more" in detail
    assert str(gone.id) in detail
    status, field, _ = refused({"sourceEnvironment": "prod", "maskScript": "nope"})
    assert (status, field) == (409, "backupId")  # the backup is checked first

    # production is protected: never refreshed unless its protection lists refresh
    resp = plane.request("PUT", f"{env}/prod/protection", headers=plane.admin,
                         json={"operations": ["deploy"],
                               "approvers": [{"type": "user", "id": "boss"}]})
    assert resp.status_code == 200, resp.text
    status, field, detail = refused({"sourceEnvironment": "staging"}, target="prod")
    assert (status, field) == (422, "env") and "does not allow refreshes" in detail
    tasks = plane.request("GET", f"/api/tasks?project={slug}", headers=plane.admin).json()
    assert tasks["items"] == []
