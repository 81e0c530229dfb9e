"""Through the real local host: ``cloudops local`` serves our ``function_app.py`` with the
SignalR extension; the official client signs in with the Easy Auth cookie, connects via
``/api/negotiate``, joins its project's group via ``/api/realtime/groups/{group}``, and
receives exactly what the app's adapter publishes to that group."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localhost.easyauth import COOKIE, principal_cookie
from shared.db import Database
from shared.realtime import RestRealtime
from shared.realtime.connection_string import parse_connection_string
from shared.realtime.events import publish_task_update
from shared.store import projects as project_store
from shared.store import roles as role_store
from tests.realtime._server import free_port
from tests.realtime.test_official_client import NodeClient
from tests.realtime.test_official_client import pytestmark as needs_node
from tests.waiting import WaitTimeout, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_node


@pytest.fixture(scope="module")
def host(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[str, Path]]:
    port, home = free_port(), tmp_path_factory.mktemp("home")
    env = {**os.environ, "DATABASE_URL": database_url, "CLOUDOPS_HOME": str(home)}
    env.pop("AzureSignalRConnectionString", None)  # the extension provides it
    cloudops = Path(sys.executable).parent / "cloudops"
    process = subprocess.Popen([str(cloudops), "local", "--port", str(port), "--no-demo"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    key_file = home / "signalr" / "access-key"
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: process.poll() is not None or (key_file.exists() and _serves(base)),
                   "cloudops local to serve", 60)
    if process.poll() is not None or not (key_file.exists() and _serves(base)):
        process.kill()
        pytest.fail(f"cloudops local did not start:\n{process.communicate()[0]}")
    yield base, home
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _serves(base: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/.auth/me", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def test_official_client_through_the_local_host_gets_its_projects_events(
        host: tuple[str, Path], db: Database) -> None:
    base, home = host
    with db.transaction() as conn:
        project = project_store.create_project(conn, slug=f"e2e-{os.getpid()}-{time.time_ns()}",
                                               name="E2E", actor="test")
        role_store.assign_role(conn, project_id=project.id, principal_type="user",
                               principal_id="e2e-user", role="reader", actor="test")
    key = (home / "signalr" / "access-key").read_text().strip()
    rest = RestRealtime(parse_connection_string(
        f"Endpoint={base}/signalr;AccessKey={key};Version=1.0;"), "cloudops")
    cookie = principal_cookie("e2e-user", "e2e@example.com", [])
    client = NodeClient(base, "e2e-user", [f"project:{project.id}"],
                        headers={"Cookie": f"{COOKIE}={cookie}"})
    try:
        joined = client.next_event()
        assert joined["event"] == "joined", joined
        tasks: list[dict[str, Any]] = [
            {"id": f"00000000-0000-0000-0000-00000000000{i}", "projectId": str(project.id),
             "status": "running", "progress": i * 10} for i in range(5)]
        for task in tasks:
            publish_task_update(rest, task)
            publish_task_update(rest, dict(task, projectId="someone-else"))
        rest.send_to_user("e2e-user", "stop", [])
        events = client.finish()
        # Each update reaches the project group and its task group; the client joined
        # only the project group, so each arrives once, in order.
        assert events[:-1] == [{"event": "message", "target": "taskUpdated", "args": [t]}
                               for t in tasks]
    finally:
        client.kill()
        rest.close()
