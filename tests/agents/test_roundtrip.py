"""The real round trip: a real ``cloudops-agent`` process against the local host (the
same function app, Service Bus emulation, Durable engine and artifact endpoint) and the
machine's Postgres. Back up a database with known rows through the public API, change
the rows, restore that backup through the API: the rows are back, and the agent verified
the artifact's sha256 before restoring."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.agents.conftest import ControlPlane, start_agent, stop_agent, url_form
from tests.conftest import drop_database, server_url, with_database
from tests.waiting import wait_until


def _client_tools_fit(admin: str) -> str | None:
    """Why the agent could not serve this server, or None. The agent picks the client
    tools that match the server (``agent.pgtools``), so only an agent with no tools new
    enough anywhere it looks cannot run the round trip."""
    from agent import pgtools

    server = pgtools.server_version("suite", admin)
    folders = pgtools.known_folders()
    if pgtools.choose(server, folders) is None:
        return pgtools.no_fit_reason("suite", server, folders)
    return None


@pytest.fixture
def source_db() -> Iterator[str]:
    admin = server_url()
    reason = _client_tools_fit(admin)
    if reason is not None:
        pytest.skip(reason)
    name = f"agent_rt_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = url_form(with_database(admin, name))
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items VALUES (1, 'alpha'), (2, 'beta; rm -rf /'),"
                     " (3, 'gamma')")
    yield url
    drop_database(admin, name)


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()


def _wait_task(plane: ControlPlane, task_id: str, timeout: float = 90) -> dict[str, Any]:
    return dict(wait_until(
        lambda: (t := plane.request("GET", f"/api/tasks/{task_id}", headers=plane.admin).json())
        ["status"] in ("succeeded", "failed", "cancelled", "timed_out") and t,
        f"task {task_id} to end", timeout))


def test_backup_change_rows_restore_brings_rows_back(control_plane: ControlPlane,
                                                     source_db: str, tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=["pg", "linux"],
                        connections={"rt": source_db})
    try:
        slug = f"rt-{secrets.token_hex(3)}"
        resp = plane.request("POST", "/api/projects", headers=plane.admin,
                             json={"slug": slug, "name": slug})
        assert resp.status_code == 201, resp.text
        resp = plane.request("POST", f"/api/projects/{slug}/environments", headers=plane.admin,
                             json={"slug": "dev", "name": "dev", "database": {"connection": "rt"},
                                   "target": {"type": "agent", "pool": pool, "labels": ["pg"]}})
        assert resp.status_code == 201, resp.text
        before = _rows(source_db)

        resp = plane.request("POST", f"/api/projects/{slug}/environments/dev/backups",
                             headers=plane.admin, json={})
        assert resp.status_code == 202, resp.text
        backup_task = _wait_task(plane, resp.json()["id"])
        assert backup_task["status"] == "succeeded", (backup_task, agent.output()[-3000:])
        backups = plane.request("GET", f"/api/projects/{slug}/environments/dev/backups",
                                headers=plane.admin).json()["items"]
        (backup,) = backups
        job = plane.db.fetch_one("SELECT result FROM jobs WHERE task_id = %s",
                                 (backup_task["id"],))
        assert job is not None and job["result"]["sha256"] == backup["sha256"]
        assert backup["sizeBytes"] > 0
        assert "using pg_dump " in plane.log_text(backup_task["id"])

        with psycopg.connect(source_db) as conn:
            conn.execute("DELETE FROM items WHERE id = 1")
            conn.execute("UPDATE items SET name = 'changed' WHERE id = 2")
            conn.execute("INSERT INTO items VALUES (4, 'new')")
        assert _rows(source_db) != before

        resp = plane.request("POST", f"/api/projects/{slug}/environments/dev/restores",
                             headers=plane.admin, json={"backupId": backup["id"]})
        assert resp.status_code == 202, resp.text
        restore_task = _wait_task(plane, resp.json()["id"])
        assert restore_task["status"] == "succeeded", (restore_task, agent.output()[-3000:])
        assert _rows(source_db) == before
        logs = plane.log_text(restore_task["id"])
        assert "sha256 verified" in logs and "safety backup: uploaded" in logs
        # the key never reaches the agent's log or the task logs
        config_key = __import__("json").loads(agent.config.read_text())["key"]
        assert config_key not in agent.output()
        assert config_key not in logs + plane.log_text(backup_task["id"])
        assert (agent.config.stat().st_mode & 0o777) == 0o600
    finally:
        stop_agent(agent)


def _project(plane: ControlPlane, pool: str, target: dict[str, Any] | None = None) -> str:
    slug = f"op-{secrets.token_hex(3)}"
    resp = plane.request("POST", "/api/projects", headers=plane.admin,
                         json={"slug": slug, "name": slug})
    assert resp.status_code == 201, resp.text
    resp = plane.request("POST", f"/api/projects/{slug}/environments", headers=plane.admin,
                         json={"slug": "dev", "name": "dev",
                               "target": target or {"type": "agent", "pool": pool}})
    assert resp.status_code == 201, resp.text
    return slug


def test_script_run_through_the_api_passes_metacharacters_literally(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[])
    try:
        slug = _project(plane, pool)
        marker = tmp_path / "pwned"
        code = "import sys; print('ARGS', sys.argv[1:])"
        resp = plane.request("POST", f"/api/projects/{slug}/scripts", headers=plane.admin,
                             json={"name": "echo", "argv": [sys.executable, "-c", code,
                                                            "{message}"],
                                   "parameters": [{"name": "message"}], "timeoutSeconds": 60})
        assert resp.status_code == 201, resp.text
        message = f"; touch {marker} $(touch {marker}) `touch {marker}` | cat && echo"
        resp = plane.request("POST", f"/api/projects/{slug}/environments/dev/scripts/echo/runs",
                             headers=plane.admin, json={"parameters": {"message": message}})
        assert resp.status_code == 202, resp.text
        task = _wait_task(plane, resp.json()["id"])
        assert task["status"] == "succeeded", (task, agent.output()[-2000:])
        assert f"ARGS [{message!r}]" in plane.log_text(task["id"])
        assert not marker.exists()
    finally:
        stop_agent(agent)


def test_restart_without_a_configured_cluster_fails_with_that_reason(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[])
    try:
        slug = _project(plane, pool, {"type": "agent", "pool": pool, "cluster": "aks-dev"})
        resp = plane.request("POST", f"/api/projects/{slug}/environments/dev/restarts",
                             headers=plane.admin, json={"workload": "web"})
        assert resp.status_code == 202, resp.text
        task = _wait_task(plane, resp.json()["id"])
        assert task["status"] == "failed"
        assert "no cluster configured" in task["error"], task
    finally:
        stop_agent(agent)
