"""The local demo ``./dev.sh`` leaves a newcomer with, seeded through the public API.

Project ``demo`` with environments ``dev`` and ``staging`` run by the local agent (pool
``local``), each with its own real database on the local Postgres seeded with a few rows,
a script catalogue with a deploy script and a harmless maintenance script, and the
host's ``default`` function key as an operator of ``demo`` (so pipelines and the CLI can
deploy). Re-running is harmless: what exists is kept.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg.conninfo import conninfo_to_dict

from localhost.easyauth import COOKIE, principal_cookie
from shared.db.urls import postgres_url

log = logging.getLogger("cloudops.demo")
SCRIPTS = Path(__file__).resolve().parent / "demo_scripts"
ENVIRONMENTS = {"dev": "Development", "staging": "Staging"}
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
        if conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0:  # type: ignore[index]
            conn.cursor().executemany("INSERT INTO customers (name) VALUES (%s)", ROWS)
    return url


def _post(http: requests.Session, url: str, body: dict[str, Any]) -> None:
    r = http.post(url, json=body, timeout=30)
    if r.status_code not in (200, 201, 409):
        raise RuntimeError(f"demo seeding: POST {url} → {r.status_code} {r.text[:300]}")


def seed_demo(base_url: str, server_url: str) -> dict[str, str]:
    """Create the demo through the API; return agent connection name → database URL."""
    http = requests.Session()
    http.cookies.set(COOKIE, principal_cookie("demo-admin", "demo-admin@example.com", ["admin"]))
    api = base_url.rstrip("/") + "/api"
    _post(http, f"{api}/projects", {"slug": "demo", "name": "Demo shop",
                                    "description": "The local demo: two agent-run "
                                                   "environments with real databases"})
    connections = {}
    # Named after the control plane's database, so several hosts on one server don't mix.
    prefix = conninfo_to_dict(server_url).get("dbname") or "cloudops"
    for slug, name in ENVIRONMENTS.items():
        connections[f"demo-{slug}"] = ensure_demo_database(server_url,
                                                           f"{prefix}_demo_{slug}")
        _post(http, f"{api}/projects/demo/environments", {
            "slug": slug, "name": name, "database": {"connection": f"demo-{slug}"},
            "target": {"type": "agent", "pool": "local", "deployScript": "deploy"}})
    python = sys.executable
    _post(http, f"{api}/projects/demo/scripts", {
        "name": "deploy", "description": "Ship a version (demo: records it, with progress)",
        "argv": [python, str(SCRIPTS / "deploy.py"), "--environment", "{environment}",
                 "--version", "{version}"],
        "parameters": [{"name": "version", "description": "version to ship"},
                       {"name": "environment", "required": False, "default": "demo",
                        "pattern": "[a-z0-9-]+"}],
        "timeoutSeconds": 300})
    _post(http, f"{api}/projects/demo/scripts", {
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


def start_demo(base_url: str, database_url: str, state_dir: Path) -> subprocess.Popen[bytes]:
    """Seed the demo and start the local agent; the caller stops the returned process."""
    from agent.local import start_local_agent

    connections = seed_demo(base_url, database_url)
    grant_pipeline_key(database_url)
    cookie = principal_cookie("demo-admin", "demo-admin@example.com", ["admin"])
    return start_local_agent(base_url, {"Cookie": f"{COOKIE}={cookie}"}, "local", [],
                             connections, state_dir / "agent",
                             allowed_executables=[sys.executable])
