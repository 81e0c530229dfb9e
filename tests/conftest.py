"""Shared fixtures: a throwaway Postgres database per test session on the configured server.

``DATABASE_URL`` names the server (CI: the machine's Postgres); unset, the embedded server
under ``.cloudops/`` is used. Either way the suite creates ``cloudops_test_<random>``,
migrates it, and drops it at the end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared.db import Database, apply_migrations, urls

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from shared.db.embedded import embedded_server_url

    return embedded_server_url(ROOT / ".cloudops", database="postgres")


def with_database(url: str, database: str) -> str:
    return urls.with_database(url, database)


def create_throwaway_database(prefix: str = "cloudops_test") -> tuple[str, str]:
    admin = server_url()
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin, name


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def empty_database_url() -> Iterator[str]:
    """A brand-new database with nothing in it (for migration tests)."""
    admin, name = create_throwaway_database("cloudops_empty")
    yield with_database(admin, name)
    drop_database(admin, name)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The suite's migrated throwaway database."""
    admin, name = create_throwaway_database()
    url = with_database(admin, name)
    apply_migrations(url)
    yield url
    drop_database(admin, name)


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=8).open()
    yield database
    database.close()


# Markers that are not folders, by what a test does (pyproject.toml declares them all;
# tests/unit/test_markers.py checks each one selects tests).
SLOW_FOLDERS = {"faults", "firstrun", "fuzz"}  # kill hosts, clone and set up, fuzz a host
EMBEDDED_FOLDERS = {"firstrun"}  # ./dev.sh on its embedded default starts the server


def _starts_a_host(func: Any) -> bool:
    """Whether a test or fixture function starts ``cloudops local`` as a process: it calls
    this module's ``start_host``, or runs ``cloudops local --port`` itself."""
    code = getattr(func, "__code__", None)
    if code is None:
        return False
    names, consts = set(code.co_names), set(code.co_consts)
    if "start_host" in names and getattr(func, "__globals__", {}).get("start_host") is start_host:
        return True
    return "Popen" in names and {"local", "--port"} <= consts


def is_e2e(item: pytest.Item) -> bool:
    """A test that drives a running local host (a real ``cloudops local`` process) over
    HTTP, or the web app in a browser: it, or a fixture it uses, starts one."""
    if _starts_a_host(getattr(item, "function", None)):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        if any(_starts_a_host(d.func) for d in defs):
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the folder it lives in, so ``-m unit`` etc. select slices, and by
    what it does: ``e2e`` (drives a running host), ``slow``, ``embedded``."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if len(parts) > 1:
            item.add_marker(parts[0])
            if parts[0] in SLOW_FOLDERS:
                item.add_marker("slow")
            if parts[0] in EMBEDDED_FOLDERS:
                item.add_marker("embedded")
        if is_e2e(item):
            item.add_marker("e2e")


# --- our app running on the local host, as a real subprocess -------------------------

class RunningHost:
    """``cloudops local`` serving our app on a free port with a throwaway database."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str, home: Path,
                 database_url: str, output: list[str]) -> None:
        self.proc = proc
        self.base_url = base_url
        self.home = home
        self.database_url = database_url
        self.output = output
        self.drain: threading.Thread | None = None
        keys = json.loads((home / "keys.json").read_text())
        self.function_key: str = keys["functionKeys"]["default"]
        self.master_key: str = keys.get("masterKey") or keys.get("master")

    def url(self, path: str) -> str:
        return self.base_url + path

    def session(self, user: str = "alice", roles: tuple[str, ...] = ("admin",)) -> Any:
        """A requests session signed in through the Easy Auth cookie."""
        import requests

        from localhost.easyauth import COOKIE, principal_cookie

        s = requests.Session()
        s.cookies.set(COOKIE, principal_cookie(user, f"{user}@example.com", list(roles)))
        return s

    def pipeline(self) -> Any:
        import requests

        s = requests.Session()
        s.headers["x-functions-key"] = self.function_key
        return s


def start_host(database_url: str, home: Path, *extra: str,
               env: dict[str, str] | None = None) -> RunningHost:
    environment = {**os.environ, "DATABASE_URL": database_url, "CLOUDOPS_HOME": str(home),
                   "PYTHONUNBUFFERED": "1", "CLOUDOPS_LOG_LEVEL": "WARNING", **(env or {})}
    environment.pop("AzureSignalRConnectionString", None)
    environment.pop("ServiceBusConnection", None)
    flags = [*extra] if "--demo" in extra else ["--no-demo", *extra]
    flags = [f for f in flags if f != "--demo"]
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "cloudops"), "local", "--port", "0",
                             *flags], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    deadline = time.monotonic() + 60
    base_url = None
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        match = re.search(r"CloudOps local host\s+(http://\S+)", line)
        if match:
            base_url = match.group(1)
            break
    if base_url is None:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # not left for the GC to warn about in some later test
        raise RuntimeError("local host did not start:\n" + "".join(output))
    drain = threading.Thread(target=_drain, args=(proc, output), daemon=True)
    drain.start()
    host = RunningHost(proc, base_url, home, database_url, output)
    host.drain = drain
    return host


def _drain(proc: subprocess.Popen[str], output: list[str]) -> None:
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            output.append(line)
            del output[:-2000]


def stop_host(host: RunningHost) -> None:
    if host.proc.poll() is None:
        host.proc.send_signal(signal.SIGINT)
        try:
            host.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            host.proc.kill()
            host.proc.wait()
    if host.drain is not None:
        host.drain.join(timeout=5)


@pytest.fixture(scope="session")
def running_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    """Our app on the local host for the whole session (its own database and state)."""
    admin, name = create_throwaway_database("cloudops_host")
    host = start_host(with_database(admin, name), tmp_path_factory.mktemp("host-home"))
    yield host
    stop_host(host)
    drop_database(admin, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that used a running host shows the host's error lines: a 500's
    traceback lives there, not in the response."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, RunningHost):
            lines = [line for line in value.output[-400:]
                     if "ERROR" in line or "Traceback" in line or line.startswith(" ")]
            if lines:
                report.sections.append(("local host errors", "".join(lines[-120:])))
