"""The process supervisor with real processes: the demo web app deployed, switched,
refused when unhealthy, restarted, brought back after the supervisor restarts, deleted;
and its control API's guards (token, names, versions)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from agent.supervisor_client import SupervisorClient, SupervisorError
from cli.demo_app import DemoApp, is_broken, make_server
from tests.agents.supervisor_helpers import (
    RunningSupervisor,
    alive,
    demo_config,
    front,
    start_supervisor,
    wait_for,
)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[RunningSupervisor]:
    sup = start_supervisor(tmp_path / "state", demo_config(tmp_path))
    yield sup
    sup.stop()


def _refuses(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_deploy_switch_refuse_restart_and_come_back_after_a_supervisor_restart(
        tmp_path: Path) -> None:
    state, config = tmp_path / "state", demo_config(tmp_path)
    sup = start_supervisor(state, config)
    try:
        client = sup.client()
        first = client.deploy("demo-web@dev", "1.0")
        url = first["url"]
        assert first["version"] == "1.0" and first["state"] == "running"
        served = front(url)
        assert served["version"] == "1.0" and served["app"] == "dev"
        assert served["pid"] == first["pid"]
        assert (state / "control-token").stat().st_mode & 0o777 == 0o600

        second = client.deploy("demo-web@dev", "2.0")
        assert second["url"] == url and second["port"] != first["port"]
        assert front(url)["version"] == "2.0"
        assert not alive(first["pid"]), "the old backend still runs after the switch"

        with pytest.raises(SupervisorError) as refused:
            client.deploy("demo-web@dev", "3.0-broken")
        assert refused.value.status == 422
        assert "503" in refused.value.reason and "last lines of its log" in refused.value.reason
        still = front(url)
        assert still["version"] == "2.0" and still["pid"] == second["pid"]
        assert client.get("demo-web@dev")["version"] == "2.0"

        restarted = client.restart("demo-web@dev")
        assert restarted["version"] == "2.0" and restarted["pid"] != second["pid"]
        assert restarted["startedAt"] > second["startedAt"]
        assert front(url)["pid"] == restarted["pid"]
        assert not alive(second["pid"])
        log_text = (state / "logs" / "demo-web@dev.log").read_text()
        assert "3.0-broken" in log_text and "GET /health" in log_text

        assert sup.stop(signal.SIGTERM) == 0
        assert not alive(restarted["pid"]), "a backend outlived its supervisor"
        assert not (state / "supervisor.json").exists()
        assert _refuses(url)
    finally:
        sup.stop()

    sup = start_supervisor(state, config)
    try:
        client = sup.client()
        back = client.get("demo-web@dev")
        assert back["url"] == url and back["version"] == "2.0" and back["state"] == "running"
        assert front(url)["version"] == "2.0"
        assert [a["app"] for a in client.list()] == ["demo-web@dev"]

        client.delete("demo-web@dev")
        assert _refuses(url)
        assert not alive(back["pid"])
        with pytest.raises(SupervisorError) as gone:
            client.get("demo-web@dev")
        assert gone.value.status == 404
        assert json.loads((state / "state.json").read_text()) == {"apps": {}}
    finally:
        sup.stop()


def test_wrong_token_bad_names_and_versions_are_refused(
        supervisor: RunningSupervisor) -> None:
    info = supervisor.info()
    resp = requests.get(info["url"] + "/apps", headers={"Authorization": "Bearer nope"},
                        timeout=10)
    assert resp.status_code == 401
    assert requests.get(info["url"] + "/apps", timeout=10).status_code == 401

    client = supervisor.client()
    cases = [("Demo-Web@dev", "1.0", "app"), ("demo-web", "1.0", "app"),
             ("nope@dev", "1.0", "app"), ("demo-web@dev", "1.0; rm -rf /", "version"),
             ("demo-web@dev", "-1", "version"), ("demo-web@dev", "", "version")]
    token = (supervisor.state_dir / "control-token").read_text().strip()
    for app, version, field in cases:
        resp = requests.put(f"{info['url']}/apps/{app}", json={"version": version},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert resp.status_code == 400, (app, version, resp.text)
        assert resp.json()["field"] == field, (app, version, resp.text)
    with pytest.raises(SupervisorError) as unknown:
        client.restart("demo-web@nowhere")
    assert unknown.value.status == 404
    assert client.list() == []


def test_a_first_deploy_that_exits_is_refused_with_its_output_and_forgotten(
        supervisor: RunningSupervisor) -> None:
    client = supervisor.client()
    with pytest.raises(SupervisorError) as refused:
        client.deploy("crash@dev", "1.0")
    assert refused.value.status == 422
    assert "exited with code 3" in refused.value.reason
    assert "boom 1.0" in refused.value.reason
    with pytest.raises(SupervisorError) as gone:
        client.get("crash@dev")
    assert gone.value.status == 404


def test_concurrent_deploys_of_one_app_are_serialized(
        supervisor: RunningSupervisor) -> None:
    client = supervisor.client()
    first = client.deploy("demo-web@sandbox-pr-1", "1.0")
    results: dict[str, dict[str, object]] = {}

    def deploy(version: str) -> None:
        with SupervisorClient.from_state_dir(supervisor.state_dir) as c:
            results[version] = c.deploy("demo-web@sandbox-pr-1", version)

    threads = [threading.Thread(target=deploy, args=(v,)) for v in ("4.0", "5.0")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) == {"4.0", "5.0"}
    now = client.get("demo-web@sandbox-pr-1")
    assert now["version"] in ("4.0", "5.0")
    assert front(str(first["url"]))["pid"] == now["pid"]
    pids = [first["pid"], *(r["pid"] for r in results.values())]
    assert [p for p in pids if alive(int(str(p)))] == [now["pid"]]


def test_a_killed_supervisor_takes_its_backends_with_it(tmp_path: Path) -> None:
    state, config = tmp_path / "state", demo_config(tmp_path)
    sup = start_supervisor(state, config)
    try:
        app = sup.client().deploy("demo-web@dev", "1.0")
    finally:
        sup.stop(signal.SIGKILL)
    wait_for(lambda: not alive(int(app["pid"])), "the backend to die with its supervisor",
             timeout=10)
    with pytest.raises(SupervisorError, match="is not running"):
        SupervisorClient.from_state_dir(state).get("demo-web@dev")

    sup = start_supervisor(state, config)
    try:
        back = sup.client().get("demo-web@dev")
        assert back["url"] == app["url"] and front(app["url"])["version"] == "1.0"
    finally:
        sup.stop()


def test_client_without_a_supervisor_says_so(tmp_path: Path) -> None:
    with pytest.raises(SupervisorError, match=f"the process supervisor at {tmp_path} is not"):
        SupervisorClient.from_state_dir(tmp_path)


def test_demo_app_escapes_its_page_and_fails_health_when_broken() -> None:
    assert is_broken("2.0-broken") and is_broken("broken") and not is_broken("unbroken-1")
    app = DemoApp("<script>alert(1)</script>", "1.0-broken")
    server = make_server(0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with requests.Session() as s:
            s.trust_env = False
            page = s.get(base + "/", timeout=10)
            assert "<title>CloudOps demo app</title>" in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
            assert "<script>" not in page.text
            health = s.get(base + "/health", timeout=10)
            assert health.status_code == 503
            assert health.json() == {"status": "broken", **app.facts()}
            version = s.get(base + "/version", timeout=10)
            assert version.status_code == 200 and version.json() == health.json()
            assert version.json()["startedAt"].endswith("Z")
    finally:
        with contextlib.suppress(Exception):
            server.shutdown()
        server.server_close()
