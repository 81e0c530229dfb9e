"""Fixtures for running the real ``cloudops`` console script as a subprocess against our
app on the local host (the session's ``running_host``), authenticated with the host's
``default`` function key as the pipeline service principal ``default``."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.cli._agent import TestAgent
from tests.conftest import ROOT, RunningHost

CLOUDOPS = str(ROOT / ".venv" / "bin" / "cloudops")
# Variables that make the CLI think it is in a pipeline (or point it elsewhere): each test
# sets the ones it means.
PIPELINE_PREFIXES = ("GITHUB_", "SYSTEM_", "BUILD_", "CLOUDOPS_")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_BUILD", "CI") and not k.startswith(PIPELINE_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Cli:
    """Runs ``cloudops`` with the host's URL and key (overridable per call)."""

    host: RunningHost

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**{"CLOUDOPS_URL": self.host.base_url,
                            "CLOUDOPS_KEY": self.host.function_key, "CI": "true", **extra})

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 45) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLOUDOPS, *args], env=env or self.env(), capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([CLOUDOPS, *args], env=env or self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT)


@pytest.fixture(scope="session")
def cli(running_host: RunningHost) -> Cli:
    return Cli(running_host)


@pytest.fixture(scope="session")
def admin(running_host: RunningHost) -> Any:
    return running_host.session("alice", ("admin",))


def grant(host: RunningHost, project: str, role: str = "operator",
          principal: str = "default") -> None:
    """Give the pipeline key's service principal a role on ``project``."""
    from shared.store import projects as project_store
    from shared.store import roles

    with psycopg.connect(host.database_url, row_factory=psycopg.rows.dict_row) as conn:
        roles.assign_role(conn, project_id=project_store.get_project(conn, project).id,
                          principal_type="service", principal_id=principal, role=role,
                          actor="test")


def make_project(host: RunningHost, admin: Any,
                 environments: dict[str, dict[str, Any]]) -> str:
    """A new project with the given environments (slug → target or environment body),
    where the pipeline key is an operator."""
    project = f"cli-{uuid.uuid4().hex[:8]}"
    r = admin.post(host.url("/api/projects"), json={"slug": project, "name": "Shop"})
    assert r.status_code == 201, r.text
    for slug, spec in environments.items():
        body = spec if "target" in spec else {"target": spec}  # a target, or a whole body
        r = admin.post(host.url(f"/api/projects/{project}/environments"),
                       json={"slug": slug, "name": slug.title(), **body})
        assert r.status_code == 201, r.text
    grant(host, project)
    return project


@pytest.fixture
def noop_project(running_host: RunningHost, admin: Any) -> str:
    return make_project(running_host, admin, {"staging": {"type": "noop"},
                                              "prod": {"type": "noop"}})


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int,
                         reason: str) -> None:
    """The exit code, the reason on the last line, and no traceback anywhere."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert reason in last_line(result.stderr), result.stderr


@pytest.fixture
def served_project(running_host: RunningHost, admin: Any) -> Iterator[str]:
    """A project whose ``db`` environment runs on an agent that completes every job."""
    agent = TestAgent(running_host, admin).serve()
    yield make_project(running_host, admin, {"db": {"target": agent.target,
                                                      "database": {"connection": "main"}}})
    agent.stop()
