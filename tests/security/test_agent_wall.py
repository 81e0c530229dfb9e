"""The agent is a second wall (#17, item 2): when the control plane's grants let a job
through that the agent's own config does not serve, the real agent process refuses it,
the task fails with the agent's reason, and nothing ran.

The server side is opened on purpose here: a global admin grants the pool and the
database connection to every project ("*"), while the agent's config says the connection
serves the owner's project alone.
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

from localhost.easyauth import COOKIE, principal_cookie
from tests.conftest import RunningHost, create_throwaway_database, drop_database, with_database
from tests.security.conftest import Victim, own_project

pytestmark = pytest.mark.security


@dataclass
class Wall:
    world: Victim  # the owner's project, pool, connection, agent and database
    agent_config: Path


def _stop(agent: Any) -> None:
    agent.terminate()
    try:
        agent.wait(30)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def _pool_and_agent(host: RunningHost, admin: Any, state: Path, *, tag: str,
                    connections: dict[str, Any], allowed: list[str] | None) -> tuple[str, Any]:
    from agent.local import start_local_agent

    pool = f"wall-{tag}"
    assert admin.post(host.url("/api/pools"), json={"name": pool}).status_code == 201
    r = admin.post(host.url(f"/api/resources/pool:{pool}/grants"), json={"project": "*"})
    assert r.status_code == 201, r.text
    cookie = principal_cookie(f"root-{tag}", "root@example.com", ["admin"])
    agent = start_local_agent(host.base_url, {"Cookie": f"{COOKIE}={cookie}"}, pool, [],
                              connections, state, allowed_executables=allowed,
                              supervise=False)
    return pool, agent


@pytest.fixture(scope="module")
def wall(running_host: RunningHost, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Wall]:
    host = running_host
    tag = uuid.uuid4().hex[:6]
    admin = host.session(f"root-{tag}", ("admin",))
    state = tmp_path_factory.mktemp("wall-agent")
    server, name = create_throwaway_database("cloudops_wall")
    url = with_database(server, name)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada'), ('Grace')")
    project, connection = f"owner-{tag}", f"owner-db-{tag}"
    assert admin.post(host.url("/api/resources"), json={
        "kind": "connection", "name": connection}).status_code == 201
    r = admin.post(host.url(f"/api/resources/connection:{connection}/grants"),
                   json={"project": "*"})
    assert r.status_code == 201, r.text
    assert admin.post(host.url("/api/projects"),
                      json={"slug": project, "name": "Owner"}).status_code == 201
    pool, agent = _pool_and_agent(
        host, admin, state, tag=tag, allowed=[sys.executable],
        connections={connection: {"url": url, "projects": [f"{project}/dev"]}})
    r = admin.post(host.url(f"/api/projects/{project}/environments"), json={
        "slug": "dev", "name": "Dev", "database": {"connection": connection},
        "target": {"type": "agent", "pool": pool}})
    assert r.status_code == 201, r.text
    world = Victim(host, admin, project, pool, connection, url, agent, state,
                   state / "never-written")
    try:
        yield Wall(world, state / "agent-config.json")
    finally:
        _stop(agent)
        drop_database(server, name)


def test_the_agent_refuses_a_backup_of_a_connection_that_does_not_serve_the_project(
        wall: Wall, mallory: Any, running_host: RunningHost) -> None:
    world = wall.world
    evil = own_project(running_host, mallory)
    r = mallory.post(world.api(f"/projects/{evil}/environments"), json={
        "slug": "dev", "name": "Dev", "database": {"connection": world.connection},
        "target": {"type": "agent", "pool": world.pool}})
    assert r.status_code == 201, r.text  # the control plane let it through (granted to all)
    before = world.agent_job_dirs()
    task = mallory.post(world.api(f"/projects/{evil}/environments/dev/backups"), json={})
    assert task.status_code == 202, task.text
    done = world.wait(task.json()["id"])
    assert done["status"] == "failed", done
    assert done["error"] == (
        f"refused by the agent: its connection '{world.connection}' does not serve project "
        f"'{evil}' environment 'dev' (it serves {world.project}/dev)")
    [job] = world.jobs_of(evil)
    assert job["status"] == "failed" and job["agent_id"] is not None  # the agent said no
    assert world.agent_job_dirs() == before  # no dump was ever started
    assert world.sql("SELECT b.id FROM backups b JOIN environments e ON e.id ="
                     " b.environment_id JOIN projects p ON p.id = e.project_id"
                     " WHERE p.slug = %s", evil) == []
    assert world.customers() == [(1, "Ada"), (2, "Grace")]


def test_the_connection_still_serves_the_project_it_names(wall: Wall) -> None:
    world = wall.world
    task = world.admin.post(world.api(f"/projects/{world.project}/environments/dev/backups"),
                            json={})
    assert task.status_code == 202, task.text
    done = world.wait(task.json()["id"], timeout=120)
    assert done["status"] == "succeeded", done


def test_an_agent_without_an_allowed_executables_list_runs_no_script(
        running_host: RunningHost, mallory: Any, tmp_path: Path) -> None:
    host = running_host
    tag = uuid.uuid4().hex[:6]
    admin = host.session(f"root-{tag}", ("admin",))
    marker = tmp_path / "script-ran"
    pool, agent = _pool_and_agent(host, admin, tmp_path / "agent", tag=tag,
                                  connections={}, allowed=None)
    try:
        project = own_project(host, mallory)
        r = mallory.post(host.url(f"/api/projects/{project}/scripts"), json={
            "name": "touch", "argv": [sys.executable, "-c",
                                      f"open({str(marker)!r}, 'w').write('ran')"]})
        assert r.status_code == 201, r.text
        r = mallory.post(host.url(f"/api/projects/{project}/environments"), json={
            "slug": "dev", "name": "Dev", "target": {"type": "agent", "pool": pool}})
        assert r.status_code == 201, r.text
        run = mallory.post(host.url(f"/api/projects/{project}/environments/dev/scripts/"
                                    "touch/runs"), json={"parameters": {}})
        assert run.status_code == 202, run.text
        world = Victim(host, admin, project, pool, "", "", agent, tmp_path / "agent", marker)
        done = world.wait(run.json()["id"])
        assert done["status"] == "failed", done
        assert done["error"] == ("refused by the agent: it runs no scripts (its config has "
                                 "no allowedExecutables list)")
        [job] = world.jobs_of(project)
        assert job["agent_id"] is not None
        assert not marker.exists()
        assert world.agent_job_dirs() == set()
    finally:
        _stop(agent)
