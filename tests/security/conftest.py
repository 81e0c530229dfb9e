"""The attacks of issue #17, on the suite's local host with a real agent process.

``victim`` is a project as a platform team sets one up: its own agent pool with a real
``cloudops-agent`` process, its own database (a real one, seeded), both registered and
granted to it alone, and an environment whose deploy script drops a marker file when it
runs. ``mallory`` is a global operator: she may create projects, and so administers
those she creates. Every attack asserts the refusal and that nothing ran: no job in the
database, no job folder in the agent's work directory, no marker, the database unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from localhost.easyauth import COOKIE, principal_cookie
from tests.conftest import RunningHost, create_throwaway_database, drop_database, with_database
from tests.waiting import wait_until

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


@dataclass
class Victim:
    host: RunningHost
    admin: Any  # a global admin's session
    project: str
    pool: str
    connection: str
    database_url: str
    agent: subprocess.Popen[bytes]
    state: Path
    marker: Path

    def api(self, path: str) -> str:
        return self.host.url("/api" + path)

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.host.database_url, row_factory=dict_row) as conn:
            return conn.execute(query, args).fetchall()

    def jobs_of(self, project: str) -> list[dict[str, Any]]:
        return self.sql("SELECT j.* FROM jobs j JOIN tasks t ON t.id = j.task_id"
                        " JOIN projects p ON p.id = t.project_id WHERE p.slug = %s", project)

    def agent_job_dirs(self) -> set[str]:
        jobs = self.state / "work" / "jobs"
        return {p.name for p in jobs.iterdir()} if jobs.exists() else set()

    def customers(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute("SELECT id, name FROM customers ORDER BY id").fetchall()

    def wait(self, task_id: str, statuses: set[str] = TERMINAL,
             timeout: float = 60) -> dict[str, Any]:
        return wait_until(lambda: _task_in(self.admin, self.api(f"/tasks/{task_id}"),
                                           statuses), f"task {task_id} in {statuses}",
                          timeout)


def _task_in(session: Any, url: str, statuses: set[str]) -> dict[str, Any] | None:
    task = session.get(url).json()
    return task if task["status"] in statuses else None


def session_of(host: RunningHost, user: str, roles: tuple[str, ...]) -> Any:
    return host.session(user, roles)


@pytest.fixture(scope="module")
def victim(running_host: RunningHost, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Victim]:
    from agent.local import start_local_agent

    host = running_host
    tag = uuid.uuid4().hex[:6]
    admin = host.session(f"root-{tag}", ("admin",))
    state = tmp_path_factory.mktemp("victim-agent")
    marker = state / "deploy-ran"
    server, name = create_throwaway_database("cloudops_victim")
    url = with_database(server, name)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada'), ('Grace')")
    project, pool, connection = f"victim-{tag}", f"vpool-{tag}", f"victim-db-{tag}"
    assert admin.post(host.url("/api/pools"), json={"name": pool}).status_code == 201
    assert admin.post(host.url("/api/resources"), json={
        "kind": "connection", "name": connection}).status_code == 201
    assert admin.post(host.url("/api/projects"),
                      json={"slug": project, "name": "Victim"}).status_code == 201
    for ref in (f"pool:{pool}", f"connection:{connection}"):
        r = admin.post(host.url(f"/api/resources/{ref}/grants"), json={"project": project})
        assert r.status_code == 201, r.text
    r = admin.post(host.url(f"/api/projects/{project}/scripts"), json={
        "name": "deploy", "argv": [sys.executable, "-c",
                                   f"open({str(marker)!r}, 'a').write('{{version}}\\n')"],
        "parameters": [{"name": "version"}, {"name": "environment", "required": False}]})
    assert r.status_code == 201, r.text
    r = admin.post(host.url(f"/api/projects/{project}/environments"), json={
        "slug": "dev", "name": "Dev", "database": {"connection": connection},
        "target": {"type": "agent", "pool": pool, "deployScript": "deploy"}})
    assert r.status_code == 201, r.text
    cookie = principal_cookie(f"root-{tag}", "root@example.com", ["admin"])
    agent = start_local_agent(host.base_url, {"Cookie": f"{COOKIE}={cookie}"}, pool, [],
                              {connection: url}, state, allowed_executables=[sys.executable])
    world = Victim(host, admin, project, pool, connection, url, agent, state, marker)
    try:
        yield world
    finally:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        drop_database(server, name)


@pytest.fixture
def mallory(running_host: RunningHost) -> Any:
    """A global operator: may create projects (and administers what she creates)."""
    return running_host.session(f"mallory-{uuid.uuid4().hex[:6]}", ("operator",))


def own_project(host: RunningHost, session: Any) -> str:
    slug = f"evil-{uuid.uuid4().hex[:6]}"
    r = session.post(host.url("/api/projects"), json={"slug": slug, "name": "Evil"})
    assert r.status_code == 201, r.text
    return slug
