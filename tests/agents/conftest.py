"""Fixtures: the real local host running this repository's function app on the suite's
Postgres, with short agent timings, plus helpers to act as an admin and as agents.

The host runs on its own thread and event loop (as ``cloudops local`` does), so agent
processes and HTTP clients in tests talk to it over real loopback HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.db import Database

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 0.5
LEASE_SECONDS = 2.0


@dataclass
class ControlPlane:
    base_url: str
    master_key: str
    admin_key: str
    db: Database
    loop: asyncio.AbstractEventLoop
    home: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def admin(self) -> dict[str, str]:
        return {"x-functions-key": self.admin_key}

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 70)
        return self.session.request(method, self.base_url + path, **kw)

    def pool(self, name: str | None = None) -> str:
        name = name or f"pool-{secrets.token_hex(3)}"
        resp = self.request("POST", "/api/pools", json={"name": name}, headers=self.admin)
        assert resp.status_code in (201, 409), resp.text
        return name

    def token(self, pool: str, **body: Any) -> str:
        resp = self.request("POST", f"/api/pools/{pool}/registration-tokens", json=body,
                            headers=self.admin)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["token"])

    def register(self, pool: str, labels: list[str] | None = None, *,
                 name: str | None = None, capacity: int = 1) -> dict[str, Any]:
        body = {"token": self.token(pool), "name": name or f"agent-{secrets.token_hex(3)}",
                "labels": labels or [], "capacity": capacity}
        resp = self.request("POST", "/api/agent/register", json=body)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def as_agent(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def fire(self, function: str) -> None:
        """Run a timer function now through the host's admin API (202 = started)."""
        resp = self.request("POST", f"/admin/functions/{function}", json={},
                            headers={"x-functions-key": self.master_key})
        assert resp.status_code == 202, resp.text

    def task(self, operation: str = "noop", *, pool_target: str = "local") -> uuid.UUID:
        """A project, environment and task row for direct job dispatch tests."""
        from shared.store import projects, tasks

        with self.db.transaction() as conn:
            slug = f"p-{secrets.token_hex(4)}"
            project = projects.create_project(conn, slug=slug, name=slug, actor="test")
            env = projects.create_environment(
                conn, project_id=project.id, slug="dev", name="dev", actor="test",
                target={"type": "agent", "pool": pool_target})
            task, _ = tasks.create_task(conn, project_id=project.id, environment_id=env.id,
                                        operation=operation, parameters={}, requested_by="t")
        return task.id

    def dispatch(self, task_id: uuid.UUID, *, pool: str, kind: str = "script",
                 payload: dict[str, Any] | None = None,
                 demands: list[str] | None = None) -> uuid.UUID:
        from shared.agents.dispatch import dispatch_job
        from shared.store import tasks

        with self.db.transaction() as conn:
            task = tasks.get_task(conn, task_id)
            job, _ = dispatch_job(conn, task=task, kind=kind, payload=payload or {}, pool=pool,
                               demands=demands or [], now=_now())
        return job.id

    def job(self, job_id: uuid.UUID) -> Any:
        from shared.store import jobs

        with self.db.transaction() as conn:
            return jobs.get_job(conn, job_id)

    def task_row(self, task_id: uuid.UUID) -> Any:
        from shared.store import tasks

        with self.db.transaction() as conn:
            return tasks.get_task(conn, task_id)

    def sql(self, query: str, params: Any = None) -> None:
        with self.db.transaction() as conn:
            conn.execute(query, params)

    def log_text(self, task_id: uuid.UUID) -> str:
        rows = self.db.fetch_all("SELECT text FROM task_log_lines WHERE task_id = %s"
                                 " ORDER BY seq", (str(task_id),))
        return "\n".join(r["text"] for r in rows)


def url_form(dsn: str) -> str:
    """A ``postgresql://`` URL for a libpq DSN (the agent's connection format)."""
    from shared.db.urls import postgres_url

    return postgres_url(dsn)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.fixture(scope="package")
def control_plane(database_url: str, db: Database,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    from localhost.extensions_registry import available_extensions
    from localhost.host import Host
    from shared import services as services_module

    home = tmp_path_factory.mktemp("cloudops-home")
    database_url = url_form(database_url)
    admin_key = secrets.token_urlsafe(24)
    env = {
        "DATABASE_URL": database_url, "CLOUDOPS_MODE": "local", "CLOUDOPS_HOME": str(home),
        "CLOUDOPS_PIPELINE_KEYS": f"agents-admin={hashlib.sha256(admin_key.encode()).hexdigest()}",
        "CLOUDOPS_AGENT_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "CLOUDOPS_AGENT_LEASE_SECONDS": str(LEASE_SECONDS),
        "CLOUDOPS_TASK_QUEUE": "tasks", "CLOUDOPS_TASK_HUB": "cloudops",
    }
    before = {k: os.environ.get(k) for k in [*env, "CLOUDOPS_LOCAL_HOST_URL"]}
    os.environ.update(env)
    services_module.install(None)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO role_assignments (project_id, principal_type, principal_id, role,"
            " created_by) VALUES (NULL, 'service', 'agents-admin', 'admin', 'test')"
            " ON CONFLICT DO NOTHING")

    def on_bound(host: Host) -> None:
        os.environ["CLOUDOPS_LOCAL_HOST_URL"] = host.base_url

    host = Host(ROOT, port=0, state_dir=home / "state", extensions=available_extensions(),
                on_bound=on_bound)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-host", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(host.start(), loop).result(120)
    plane = ControlPlane(base_url=host.base_url, master_key=host.keys.master_key,
                         admin_key=admin_key, db=db, loop=loop, home=home)
    try:
        yield plane
    finally:
        asyncio.run_coroutine_threadsafe(host.stop(grace=5), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        services_module.services().close()
        services_module.install(None)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class AgentProcess:
    proc: subprocess.Popen[bytes]
    config: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_agent(plane: ControlPlane, tmp: Path, *, pool: str, labels: list[str],
                name: str | None = None, connections: dict[str, Any] | None = None,
                allowed: list[str] | None = None) -> AgentProcess:
    """Register and start a real ``cloudops-agent`` process (``agent.local``). Its scripts
    may run the suite's interpreter only, unless ``allowed`` says otherwise (an agent
    without the list runs no scripts)."""
    if allowed is None:
        allowed = [sys.executable]
    from agent.local import start_local_agent

    name = name or f"agent-{secrets.token_hex(3)}"
    state = tmp / name
    proc = start_local_agent(plane.base_url, plane.admin, pool, labels, connections or {},
                             state, name=name, allowed_executables=allowed, supervise=False)
    return AgentProcess(proc, state / "agent-config.json", state / "agent.log")


def stop_agent(agent: AgentProcess) -> None:
    if agent.proc.poll() is None:
        agent.proc.terminate()
        try:
            agent.proc.wait(20)
        except subprocess.TimeoutExpired:
            agent.proc.kill()
            agent.proc.wait(5)


def python() -> str:
    return sys.executable


def held_polls() -> int:
    """How many agent long polls the in-process control plane is holding right now."""
    from shared.agents import waiter

    return sum(w.waiting for w in waiter._instances.values())
