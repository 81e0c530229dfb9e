"""The local demo ``./dev.sh`` leaves a newcomer with, seeded through the public API.

Project ``demo`` with environments ``dev`` and ``staging`` run by the local agent (pool
``local``). Each environment is real:

- its **app** is the demo web app (``cli/demo_app.py``) run by a process supervisor
  (``agent/supervisor.py``) as ``demo-web@<environment>`` behind a stable loopback URL,
  recorded as the environment's ``url``; Deploy runs the catalogue's deploy script, which
  starts the new version beside the old one, health-checks it and switches; Restart
  restarts the ``web`` service through the agent (a new, health-checked process);
- its **database** is its own on the local Postgres, seeded with a few rows; Back up,
  Restore and sandboxes use the agent's Postgres tools against it;
- a harmless maintenance script is in the catalogue, and the host's ``default`` function
  key is an operator of ``demo`` (so pipelines and the CLI can deploy);
- pool ``local`` and the connections ``demo-dev`` / ``demo-staging`` are registered and
  granted to ``demo`` alone, so no other project can name them.

Re-running is harmless: what exists is kept, and the settings that point at this run's
supervisor (targets, scripts) are brought up to date.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg
import requests
from psycopg.conninfo import conninfo_to_dict

from localhost.easyauth import COOKIE, principal_cookie
from shared.db.urls import postgres_url

log = logging.getLogger("cloudops.demo")
SCRIPTS = Path(__file__).resolve().parent / "demo_scripts"
ENVIRONMENTS = {"dev": "Development", "staging": "Staging"}
PROGRAM = "demo-web"
FIRST_VERSION = "1.0.0"
TARGET_SERVICES = {"web": "web"}
ROWS = [("Ada Lovelace",), ("Grace Hopper",), ("Edsger Dijkstra",), ("Barbara Liskov",),
        ("Ken Thompson",)]


def _database_url(server_url: str, name: str) -> str:
    """A ``postgresql://`` URL for database ``name`` on the server (the agent's format)."""
    return postgres_url(server_url, dbname=name)


def ensure_demo_database(server_url: str, name: str) -> str:
    """Create ``name`` on the server (once) with a seeded ``customers`` table."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = _database_url(server_url, name)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS customers (id serial PRIMARY KEY,"
                     " name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        count = conn.execute("SELECT count(*) FROM customers").fetchone()
        assert count is not None  # count(*) answers one row
        if count[0] == 0:
            conn.cursor().executemany("INSERT INTO customers (name) VALUES (%s)", ROWS)
    return url


def _post(http: requests.Session, url: str, body: dict[str, Any]) -> None:
    r = http.post(url, json=body, timeout=30)
    if r.status_code not in (200, 201, 409):
        raise RuntimeError(f"demo seeding: POST {url} → {r.status_code} {r.text[:300]}")


def _admin_session() -> requests.Session:
    """The seeding admin's session. The host may answer 503 + Retry-After while it is
    busy (a Postgres pool with no free connection on a loaded machine): wait and retry,
    as any well-behaved client does; every seeding call is safe to repeat."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    http = requests.Session()
    retry = Retry(total=6, connect=0, read=0, status_forcelist=(503,), allowed_methods=None,
                  backoff_factor=0.5, respect_retry_after_header=True, raise_on_status=False)
    http.mount("http://", HTTPAdapter(max_retries=retry))
    http.cookies.set(COOKIE, principal_cookie("demo-admin", "demo-admin@example.com", ["admin"]))
    return http


def _ensure_script(http: requests.Session, api: str, definition: dict[str, Any]) -> None:
    """Create the catalogue script, or replace it when this run's definition differs."""
    scripts: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "200"}
    while True:  # every page of the catalogue
        r = http.get(f"{api}/projects/demo/scripts", params=params, timeout=30)
        r.raise_for_status()
        scripts.extend(r.json()["items"])
        if not r.json()["nextCursor"]:
            break
        params["cursor"] = r.json()["nextCursor"]
    existing = {s["name"]: s for s in scripts}.get(definition["name"])
    if existing is not None and existing.get("argv") == definition["argv"]:
        return
    if existing is not None:
        http.delete(f"{api}/projects/demo/scripts/{definition['name']}", timeout=30)
    _post(http, f"{api}/projects/demo/scripts", definition)


def grant_demo_resources(http: requests.Session, api: str) -> None:
    """Register what the demo's environments name — pool ``local`` and each environment's
    database connection — and grant them to project ``demo`` only (tenant isolation:
    another project cannot name them)."""
    _post(http, f"{api}/pools", {"name": "local", "description": "agents on this machine"})
    names = [("pool", "local")]
    for slug in ENVIRONMENTS:
        _post(http, f"{api}/resources", {"kind": "connection", "name": f"demo-{slug}",
                                         "description": f"the demo's {slug} database"})
        names.append(("connection", f"demo-{slug}"))
    for kind, name in names:
        _post(http, f"{api}/resources/{kind}:{name}/grants", {"project": "demo"})


def seed_demo(base_url: str, server_url: str, supervisor_dir: Path) -> dict[str, str]:
    """Create the demo through the API; return agent connection name → database URL."""
    http = _admin_session()
    api = base_url.rstrip("/") + "/api"
    _post(http, f"{api}/projects", {"slug": "demo", "name": "Demo shop",
                                    "description": "The local demo: two agent-run "
                                                   "environments with real apps and "
                                                   "databases"})
    grant_demo_resources(http, api)
    connections = {}
    # Named after the control plane's database, so several hosts on one server don't mix.
    prefix = conninfo_to_dict(server_url).get("dbname") or "cloudops"
    for slug, name in ENVIRONMENTS.items():
        connections[f"demo-{slug}"] = ensure_demo_database(server_url,
                                                           f"{prefix}_demo_{slug}")
        target = {"type": "agent", "pool": "local", "deployScript": "deploy",
                  "services": TARGET_SERVICES}
        _post(http, f"{api}/projects/demo/environments", {
            "slug": slug, "name": name, "database": {"connection": f"demo-{slug}"},
            "target": target})
        r = http.patch(f"{api}/projects/demo/environments/{slug}", json={"target": target},
                       timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"demo seeding: PATCH environment {slug} → {r.status_code}")
    python = sys.executable
    _ensure_script(http, api, {
        "name": "deploy", "description": "Ship a version of the demo app: start it beside "
                                         "the old one, health-check, switch",
        "argv": [python, str(SCRIPTS / "deploy.py"), "--supervisor", str(supervisor_dir),
                 "--environment", "{environment}", "--version", "{version}"],
        "parameters": [{"name": "version", "description": "version to ship"},
                       {"name": "environment", "required": False, "default": "dev",
                        "pattern": "[a-z0-9-]+"}],
        "timeoutSeconds": 300})
    _ensure_script(http, api, {
        "name": "cleanup-report", "description": "Report old files a cleanup would free "
                                                 "(reads only)",
        "argv": [python, str(SCRIPTS / "maintenance.py"), "--path", "{path}",
                 "--older-than-days", "{days}"],
        "parameters": [{"name": "path", "default": "/tmp", "required": False,
                        "pattern": "/[A-Za-z0-9._/-]*"},
                       {"name": "days", "type": "integer", "default": 7, "required": False}],
        "timeoutSeconds": 120})
    return connections


def grant_pipeline_key(database_url: str) -> None:
    """The host's ``default`` function key acts as service ``default``: operator on demo."""
    from psycopg.rows import dict_row

    from shared.store import projects, roles

    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        project = projects.get_project(conn, "demo")
        roles.assign_role(conn, project_id=project.id, principal_type="service",
                          principal_id="default", role="operator", actor="demo-seed")


def start_supervisor(state_dir: Path, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Start the process supervisor that runs the demo apps; wait until it answers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "config.json"
    config.write_text(json.dumps({"programs": {PROGRAM: {
        "command": [sys.executable, "-m", "cli.demo_app", "--port", "{port}", "--app",
                    "{app}", "--version", "{version}"],
        "healthPath": "/health", "startSeconds": 20,
        "cwd": str(Path(__file__).resolve().parent.parent)}}}, indent=2))
    ready = state_dir / "supervisor.json"
    ready.unlink(missing_ok=True)
    with (state_dir / "supervisor.log").open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.supervisor", "--state-dir", str(state_dir),
             "--config", str(config)], cwd=Path(__file__).resolve().parent.parent,
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo's process supervisor exited ({proc.returncode}); "
                               f"see {state_dir / 'supervisor.log'}")
        if ready.exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the demo's process supervisor did not start within {timeout:g} s")


def deploy_missing_apps(base_url: str, supervisor_dir: Path) -> list[str]:
    """Deploy (as a real task) each environment whose app the supervisor does not run:
    the first start, or a state folder wiped since. Returns the task ids."""
    from agent.supervisor_client import SupervisorClient, SupervisorError

    client = SupervisorClient.from_state_dir(supervisor_dir)
    http = _admin_session()
    api = base_url.rstrip("/") + "/api/projects/demo/environments"
    started = []
    for slug in ENVIRONMENTS:
        try:
            client.get(f"{PROGRAM}@{slug}")
            continue
        except SupervisorError:
            pass
        r = http.post(f"{api}/{slug}/deployments", json={"version": FIRST_VERSION}, timeout=30)
        if r.status_code != 202:
            raise RuntimeError(f"demo: deploying {FIRST_VERSION} to {slug} → "
                               f"{r.status_code} {r.text[:300]}")
        started.append(r.json()["id"])
    return started


class Process(Protocol):
    """A child process the demo stops: a ``Popen`` or the local agent's supervisor."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class Demo:
    """The demo's processes, stopped together (the agent first: it may be mid-job)."""

    supervisor: subprocess.Popen[bytes]
    agent: Process
    first_deploys: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.agent.pid

    def processes(self) -> list[Process]:
        return [self.agent, self.supervisor]


def start_demo(base_url: str, database_url: str, state_dir: Path) -> Demo:
    """Seed the demo, start its supervisor and the local agent; the caller stops them."""
    from agent.local import start_local_agent

    supervisor_dir = state_dir / "demo-apps"
    supervisor = start_supervisor(supervisor_dir)
    try:
        connections = seed_demo(base_url, database_url, supervisor_dir)
        grant_pipeline_key(database_url)
        cookie = principal_cookie("demo-admin", "demo-admin@example.com", ["admin"])
        # the agent's own wall: each database serves its environment (and its sandboxes),
        # the app service the demo project, and scripts run the demo's interpreter only
        scoped = {name: {"url": url, "projects": [f"demo/{name.removeprefix('demo-')}"]}
                  for name, url in connections.items()}
        agent = start_local_agent(
            base_url, {"Cookie": f"{COOKIE}={cookie}"}, "local", [], scoped,
            state_dir / "agent", allowed_executables=[sys.executable],
            services={"web": {"supervisor": str(supervisor_dir),
                              "app": f"{PROGRAM}@{{environment}}", "projects": ["demo"]}})
    except BaseException:
        supervisor.terminate()
        supervisor.wait(30)
        raise
    demo = Demo(supervisor, agent)
    demo.first_deploys = deploy_missing_apps(base_url, supervisor_dir)
    return demo
