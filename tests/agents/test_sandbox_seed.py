"""Sandboxes seeded from a fresh backup of the parent (the default) or from a chosen one,
end to end: a real agent, the local host and real Postgres. A chosen backup must be a
regular backup of the parent whose artifact is still stored; anything else is refused
before any task, naming backupId."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg

from tests.agents.conftest import ControlPlane, start_agent, stop_agent
from tests.agents.test_refresh import _emails, _setup, _wait, two_databases  # noqa: F401
from tests.conftest import drop_database, server_url, with_database


def _sandbox_emails(plane: ControlPlane, slug: str, name: str) -> list[str]:
    env = plane.request("GET", f"/api/projects/{slug}/environments/{name}",
                        headers=plane.admin).json()
    database = env["database"]["databaseName"]
    try:
        return _emails(with_database(server_url(), database))
    finally:
        drop_database(server_url(), database)


def _backups(plane: ControlPlane, slug: str, env: str) -> list[dict[str, Any]]:
    return list(plane.request("GET", f"/api/projects/{slug}/environments/{env}/backups",
                              headers=plane.admin).json()["items"])


def test_a_sandbox_is_seeded_from_a_fresh_backup_or_the_one_chosen(
        control_plane: ControlPlane, two_databases: tuple[str, str],  # noqa: F811
        tmp_path: Path) -> None:
    plane, (prod, stage) = control_plane, two_databases
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[],
                        connections={"prod": prod, "staging": stage})
    try:
        slug = _setup(plane, pool)
        env = f"/api/projects/{slug}/environments/prod"
        older = _wait(plane, plane.request("POST", f"{env}/backups", headers=plane.admin,
                                           json={}).json()["id"])
        assert older["status"] == "succeeded", (older, agent.output()[-2000:])
        older_id = older["result"]["backup"]["id"]
        with psycopg.connect(prod) as conn:  # prod moves on after that backup
            conn.execute("INSERT INTO people VALUES (3, 'cy@corp.example')")

        resp = plane.request("POST", f"{env}/sandboxes", headers=plane.admin,
                             json={"name": f"fresh-{secrets.token_hex(2)}", "ttlHours": 1})
        assert resp.status_code == 202, resp.text
        fresh = _wait(plane, resp.json()["id"])
        assert fresh["status"] == "succeeded", (fresh, agent.output()[-3000:])
        newest = _backups(plane, slug, "prod")[0]
        assert newest["kind"] == "backup" and newest["taskId"] == fresh["id"]
        assert fresh["result"]["seedBackupId"] == newest["id"] != older_id
        assert "fresh backup of prod" in plane.log_text(fresh["id"])
        assert _sandbox_emails(plane, slug, resp.json()["parameters"]["name"]) == [
            "ann@corp.example", "bob@corp.example", "cy@corp.example"]

        count = len(_backups(plane, slug, "prod"))
        resp = plane.request("POST", f"{env}/sandboxes", headers=plane.admin,
                             json={"name": f"old-{secrets.token_hex(2)}", "ttlHours": 1,
                                   "backupId": older_id})
        assert resp.status_code == 202, resp.text
        assert resp.json()["parameters"]["backupId"] == older_id
        chosen = _wait(plane, resp.json()["id"])
        assert chosen["status"] == "succeeded", (chosen, agent.output()[-3000:])
        assert chosen["result"]["seedBackupId"] == older_id
        assert len(_backups(plane, slug, "prod")) == count  # no backup taken this time
        assert _sandbox_emails(plane, slug, resp.json()["parameters"]["name"]) == [
            "ann@corp.example", "bob@corp.example"]
    finally:
        stop_agent(agent)


def test_a_chosen_seed_that_is_not_a_stored_regular_backup_of_the_parent_is_refused(
        control_plane: ControlPlane) -> None:
    from shared.store import backups as backup_store

    plane = control_plane
    slug = _setup(plane, plane.pool())
    env = f"/api/projects/{slug}/environments"
    with plane.db.transaction() as conn:
        ids = {r["slug"]: r["id"] for r in conn.execute(
            "SELECT e.slug, e.id FROM environments e JOIN projects p ON p.id = e.project_id"
            " WHERE p.slug = %s", (slug,))}

    def recorded(environment: str, kind: str) -> str:
        # the row alone: who it belongs to and its kind are checked before the artifact
        with plane.db.transaction() as conn:
            return str(backup_store.record_backup(
                conn, environment_id=ids[environment], task_id=None,
                location=f"local:backups/{slug}/{environment}-{kind}.dump", size_bytes=4,
                sha256="0" * 64, kind=kind).id)

    def refused(body: dict[str, Any]) -> tuple[int, str, str]:
        resp = plane.request("POST", f"{env}/prod/sandboxes", headers=plane.admin,
                             json={"name": "sb", **body})
        assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.text
        return resp.status_code, resp.json().get("field"), resp.json()["detail"]

    status, field, detail = refused({"backupId": recorded("staging", "backup")})
    assert (status, field) == (422, "backupId") and "not a backup of prod" in detail
    status, field, detail = refused({"backupId": recorded("prod", "safety")})
    assert (status, field) == (422, "backupId") and "not a regular backup" in detail
    with plane.db.transaction() as conn:
        gone = backup_store.record_backup(
            conn, environment_id=ids["prod"], task_id=None,
            location=f"local:backups/{slug}/gone.dump", size_bytes=1, sha256="0" * 64)
    status, field, detail = refused({"backupId": str(gone.id)})
    assert (status, field) == (409, "backupId") and "no artifact any more" in detail
    assert refused({"backupId": "00000000-0000-0000-0000-000000000000"})[:2] == (
        404, "backupId")
    assert refused({"backupId": "not-a-uuid"})[:2] == (422, "backupId")
    tasks = plane.request("GET", f"/api/tasks?project={slug}", headers=plane.admin).json()
    assert tasks["items"] == []
    names = [e["slug"] for e in plane.request("GET", f"{env}", headers=plane.admin)
             .json()["items"]]
    assert "sb" not in names
