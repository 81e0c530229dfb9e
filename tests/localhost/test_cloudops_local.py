"""Our own app served by ``cloudops local`` as a real subprocess, driven over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localhost.conftest import request
from tests.waiting import WaitTimeout, wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def served(database_url: str, home: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "CLOUDOPS_HOME": str(home)}
    env.pop("ServiceBusConnection", None)
    cloudops = Path(sys.executable).parent / "cloudops"
    process = subprocess.Popen([str(cloudops), "local", "--port", str(port), "--no-demo"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            request(base, "GET", "/.auth/me")
        except OSError:
            return False
        return True

    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: process.poll() is not None or serving(), "cloudops local to serve",
                   60)
    if process.poll() is not None or not serving():
        process.kill()
        pytest.fail(f"cloudops local did not start:\n{process.communicate()[0]}")
    yield process, base
    if process.poll() is None:
        process.kill()
        process.wait()


def test_health_reports_the_database_up(served: tuple[subprocess.Popen[str], str]) -> None:
    reply = request(served[1], "GET", "/api/health")
    assert reply.status == 200
    assert reply.json()["database"]["status"] == "up"


def test_unknown_route_is_404(served: tuple[subprocess.Popen[str], str]) -> None:
    assert request(served[1], "GET", "/api/definitely/not/here").status == 404


def test_wrong_method_is_405(served: tuple[subprocess.Popen[str], str]) -> None:
    reply = request(served[1], "DELETE", "/api/health")
    assert reply.status == 405 and "GET" in reply.headers["allow"]


def test_the_master_key_is_refused_by_the_api_saying_it_is_for_the_admin_api(
        served: tuple[subprocess.Popen[str], str], home: Path) -> None:
    master = json.loads((home / "keys.json").read_text())["masterKey"]
    reply = request(served[1], "GET", "/api/projects", headers={"x-functions-key": master})
    assert reply.status == 401
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert "master key opens only the admin API (/admin/*)" in reply.json()["detail"]
    assert reply.json()["field"] == "key"


def test_ctrl_c_stops_cleanly_and_printed_the_banner(
        served: tuple[subprocess.Popen[str], str], home: Path) -> None:
    process, base = served
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "CloudOps local host  http://127.0.0.1:" in output
    assert "function (default):" in output and "master:" in output
    assert "admin API (/admin/*) only" in output
    keys = json.loads((home / "keys.json").read_text())
    export = next(line.strip() for line in output.splitlines()
                  if line.strip().startswith("export "))
    assert shlex.split(export) == ["export", f"CLOUDOPS_URL={base}",
                                   f"CLOUDOPS_KEY={keys['functionKeys']['default']}"]
    assert "stopped" in output


def test_stop_db_stops_the_embedded_server_that_outlives_the_host(tmp_path: Path) -> None:
    from shared.db.embedded import embedded_server_running, embedded_server_url

    embedded_server_url(tmp_path)  # what `cloudops local` starts when DATABASE_URL is unset
    assert embedded_server_running(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CLOUDOPS_HOME"] = str(tmp_path)
    cloudops = str(Path(sys.executable).parent / "cloudops")
    stopped = subprocess.run([cloudops, "local", "--stop-db"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"embedded PostgreSQL in {tmp_path / 'pgdata'}: stopped"
    assert not embedded_server_running(tmp_path)
    again = subprocess.run([cloudops, "local", "--stop-db"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.stdout.strip().endswith(": was not running")
