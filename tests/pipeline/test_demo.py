"""The local demo from ./dev.sh on the suite's Postgres: `cloudops local` seeds project demo,
starts its process supervisor and a local agent, deploys each app once, and a restart of
`web` gives a new process. (Every operation, from a clean copy: tests/firstrun.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
from tests.waiting import wait_until

ENV = "/api/projects/demo/environments/dev"


@pytest.fixture(scope="module")
def demo_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin, name = create_throwaway_database("cloudops_demo")
    host = start_host(with_database(admin, name), tmp_path_factory.mktemp("demo"), "--demo")
    try:
        yield host
    finally:
        stop_host(host)
        for db in (f"{name}_demo_dev", f"{name}_demo_staging"):
            drop_database(admin, db)
        drop_database(admin, name)


def _run(host: RunningHost, http: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(host.url(f"{ENV}/{path}"), json=body)
    assert r.status_code == 202, r.text
    return wait_for(http, host, r.json()["id"], timeout=60)


def _version(url: str) -> dict[str, Any]:
    import requests

    r = requests.get(url + "/version", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_demo_serves_its_apps_and_restarts_them_through_the_local_agent(
        demo_host: RunningHost) -> None:
    """The whole newcomer tour is tests/firstrun; this is the demo on the suite's server."""
    host = demo_host
    pipeline = host.pipeline()  # the default function key is an operator of demo
    _wait_for_demo(host)
    env = wait_until(lambda: (e := pipeline.get(host.url(ENV)).json())["url"] and e,
                     "the first deploy to record dev's URL", timeout=60)
    before = _version(env["url"])
    assert before["version"] == "1.0.0"
    restarted = _run(host, pipeline, "restarts", {"workload": "web"})
    assert restarted["status"] == "succeeded", restarted
    after = _version(env["url"])
    assert (after["version"], after["pid"] != before["pid"]) == ("1.0.0", True)
    unknown = _run(host, pipeline, "restarts", {"workload": "db"})
    assert unknown["status"] == "failed" and "its services: web" in unknown["error"]


def _demo_db(host: RunningHost) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return f"{conninfo_to_dict(host.database_url)['dbname']}_demo_dev"


def _wait_for_demo(host: RunningHost, timeout: float = 60) -> None:
    wait_until(lambda: any("demo: " in line for line in host.output),
               "the demo to be set up (a 'demo: ' line in the host's output)", timeout)
    assert any("demo: project 'demo'" in line for line in host.output), host.output
