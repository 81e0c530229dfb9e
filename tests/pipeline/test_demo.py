"""The local demo from ./dev.sh: `cloudops local` seeds project demo and starts a local
agent; deploy, backup, restore, a script run and a sandbox all succeed through it, and
restart pods says clearly that no cluster is configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.pipeline.test_pipeline_e2e import wait_for

ENV = "/api/projects/demo/environments/dev"


@pytest.fixture(scope="module")
def demo_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin, name = create_throwaway_database("cloudops_demo")
    host = start_host(with_database(admin, name), tmp_path_factory.mktemp("demo"), "--demo")
    try:
        yield host
    finally:
        stop_host(host)
        for db in (f"{name}_demo_dev", f"{name}_demo_staging",
                   "sandbox_demo_try_it"):
            drop_database(admin, db)
        drop_database(admin, name)


def _run(host: RunningHost, http: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(host.url(f"{ENV}/{path}"), json=body)
    assert r.status_code == 202, r.text
    return wait_for(http, host, r.json()["id"], timeout=60)


def _rows(host: RunningHost) -> int:
    with psycopg.connect(with_database(host.database_url, _demo_db(host))) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


def test_the_demo_runs_every_operation_through_the_local_agent(demo_host: RunningHost) -> None:
    host = demo_host
    pipeline = host.pipeline()  # the default function key is an operator of demo
    _wait_for_demo(host)
    deployed = _run(host, pipeline, "deployments", {"version": "1.2.3"})
    assert deployed["status"] == "succeeded", deployed
    logs = pipeline.get(host.url(f"/api/tasks/{deployed['id']}/logs")).json()["items"]
    assert any("dev now runs 1.2.3" in line["text"] for line in logs)

    backup = _run(host, pipeline, "backups", {})
    assert backup["status"] == "succeeded", backup
    assert len(backup["result"]["backup"]["sha256"]) == 64
    assert _rows(host) == 5
    with psycopg.connect(with_database(host.database_url, _demo_db(host))) as conn:
        conn.execute("DELETE FROM customers WHERE id > 1")
    assert _rows(host) == 1
    restored = _run(host, pipeline, "restores", {"backupId": backup["result"]["backup"]["id"]})
    assert restored["status"] == "succeeded", restored
    assert _rows(host) == 5

    script = _run(host, pipeline, "scripts/cleanup-report/runs",
                  {"parameters": {"path": str(Path(__file__).parent), "days": 0}})
    assert script["status"] == "succeeded", script
    sandbox = _run(host, pipeline, "sandboxes", {"name": "try-it", "ttlHours": 1})
    assert sandbox["status"] == "succeeded", sandbox
    assert sandbox["result"]["environment"] == "try-it"

    restart = _run(host, pipeline, "restarts", {"workload": "web"})
    assert restart["status"] == "failed"
    assert "no Kubernetes cluster is configured" in restart["error"]


def _demo_db(host: RunningHost) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return f"{conninfo_to_dict(host.database_url)['dbname']}_demo_dev"


def _wait_for_demo(host: RunningHost, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("demo: " in line for line in host.output):
            assert any("demo: project 'demo'" in line for line in host.output), host.output
            return
        time.sleep(0.2)
    raise AssertionError("the demo was not set up:\n" + "".join(host.output[-50:]))
