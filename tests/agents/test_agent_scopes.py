"""The agent's own wall: a connection, cluster or service entry that declares ``projects``
serves only the jobs of those projects (or project/environment pairs, sandboxes of the
environment included); the handlers refuse any other job before touching anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent import config as config_file
from agent.config import AgentConfig, ConfigError, serves
from agent.handlers import JobContext, JobFailed, handler_for


@pytest.mark.parametrize(("scope", "project", "environment", "parent", "expected"), [
    (None, "shop", "dev", None, True),  # no declared scope: every project, as before
    (["*"], "other", "prod", None, True),
    ([], "shop", "dev", None, False),
    (["shop"], "shop", "prod", None, True),
    (["shop"], "shopping", "prod", None, False),
    (["shop"], None, None, None, False),
    (["shop/dev"], "shop", "dev", None, True),
    (["shop/dev"], "shop", "prod", None, False),
    (["shop/dev"], "shop", "dev-sbx-1", "dev", True),  # a sandbox of dev
    (["shop/dev"], "shop", "prod-sbx-1", "prod", False),
    (["shop/dev"], "other", "dev", None, False),
])
def test_a_scope_serves_its_projects_and_their_environments_only(
        scope: list[str] | None, project: str | None, environment: str | None,
        parent: str | None, expected: bool) -> None:
    assert serves(scope, project, environment, parent) is expected


def _ctx(tmp_path: Path, kind: str, **config: Any) -> tuple[JobContext, list[str]]:
    lines: list[str] = []
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      work_dir=str(tmp_path), **config)
    return JobContext(job_id="j", kind=kind, config=cfg, log=lines.append,
                      progress=lambda _n: None), lines


def test_a_connection_serving_another_project_refuses_the_job_before_any_tool_runs(
        tmp_path: Path) -> None:
    # the URL points nowhere: reaching it would fail differently than the refusal
    ctx, lines = _ctx(tmp_path, "drop_database", connections={
        "victim-db": {"url": "postgresql://nobody@127.0.0.1:1/victim", "projects": ["victim"]}})
    payload = {"connection": "victim-db", "database": "victim_sbx", "project": "evil",
               "environment": "dev"}
    with pytest.raises(JobFailed) as refused:
        handler_for("drop_database")(payload, ctx)
    assert str(refused.value) == ("refused by the agent: its connection 'victim-db' does not "
                                  "serve project 'evil' environment 'dev' (it serves victim)")
    assert lines == []
    assert not (tmp_path / "jobs").exists()


def test_a_job_naming_no_project_is_refused_by_a_scoped_connection(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path, "backup", connections={
        "db": {"url": "postgresql://nobody@127.0.0.1:1/db", "projects": ["shop/prod"]}})
    with pytest.raises(JobFailed, match=r"the job names no project.*serves only shop/prod"):
        handler_for("backup")({"connection": "db", "uploadUrl": "http://x/u",
                               "artifact": "a"}, ctx)


def test_a_cluster_serving_another_project_refuses_the_restart(tmp_path: Path) -> None:
    ctx, lines = _ctx(tmp_path, "restart", clusters={
        "prod-aks": {"host": "https://127.0.0.1:1", "projects": ["shop/prod"]}})
    with pytest.raises(JobFailed, match="its cluster 'prod-aks' does not serve project 'shop' "
                                        "environment 'dev'"):
        handler_for("restart")({"cluster": "prod-aks", "namespace": "shop", "workload": "web",
                                "project": "shop", "environment": "dev"}, ctx)
    assert lines == []


def test_a_service_serving_another_project_refuses_the_restart(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    systemctl.chmod(0o755)
    ctx, lines = _ctx(tmp_path, "restart", services={
        "web": {"systemd": "shop-web@{environment}.service", "systemctl": str(systemctl),
                "projects": ["shop"]}})
    with pytest.raises(JobFailed, match="its service 'web' does not serve project 'evil'"):
        handler_for("restart")({"kind": "service", "service": "web", "environment": "dev",
                                "project": "evil"}, ctx)
    assert not calls.exists()
    assert lines == []


def test_config_keeps_plain_connection_urls_and_rejects_malformed_scopes(
        tmp_path: Path) -> None:
    base = {"url": "http://x", "agentId": "a", "name": "a", "pool": "p", "key": "k"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base | {"connections": {
        "old": "postgresql://u@h/db",
        "new": {"url": "postgresql://u@h/db2", "projects": ["shop/dev"]}}}))
    cfg = config_file.load(path)
    assert cfg.connection("old") == ("postgresql://u@h/db", None)
    assert cfg.connection("new") == ("postgresql://u@h/db2", ["shop/dev"])
    assert cfg.connection("missing") is None
    for bad in ({"connections": {"db": {"projects": ["shop"]}}},
                {"clusters": {"aks": {"host": "h", "projects": "shop"}}},
                {"services": {"web": {"systemd": "u", "projects": [""]}}}):
        path.write_text(json.dumps(base | bad))
        with pytest.raises(ConfigError):
            config_file.load(path)
