"""A newcomer's first run: a clean copy of the repository, no ``DATABASE_URL``, ``./dev.sh``.

The copy holds the working tree's files (tracked and new, nothing ignored: no ``.venv``,
no ``node_modules``, no ``.cloudops``), so ``./dev.sh`` installs everything itself and
starts its own embedded PostgreSQL, exactly as on a fresh machine. Then every operation
on the demo's ``dev`` environment is driven through the API, and each must have the
effect a person would see:

- deploy → the environment's URL serves the new version; a broken version fails its
  health check and the old one keeps serving;
- restart of ``web`` → a new process with a later start time;
- backup → rows deleted → restore → the rows are back;
- sandbox → its own URL (serving the parent's version) and its own seeded database;
- the catalogue script → succeeded.

Every task the demo ran ends ``succeeded`` except the deliberately broken deploy.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from shared.db.embedded import stop_embedded_server
from shared.db.urls import with_database
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_SECONDS = 900  # a cold pip + npm install on a slow machine
ENV = "/api/projects/demo/environments"


@dataclass
class DevHost:
    proc: subprocess.Popen[str]
    clone: Path
    base_url: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def http(self) -> requests.Session:
        """The host's ``default`` function key: an operator of ``demo``, as pipelines use."""
        import json

        keys = json.loads((self.clone / ".cloudops" / "keys.json").read_text())
        session = requests.Session()
        session.headers["x-functions-key"] = keys["functionKeys"]["default"]
        return session

    def url(self, path: str) -> str:
        return self.base_url + path

    def database_url(self, database: str) -> str:
        from shared.db.embedded import embedded_server_url

        return with_database(embedded_server_url(self.clone / ".cloudops", "postgres"),
                             database)


def _copy_working_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _newcomer_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "DATABASE_URL" and not k.startswith(("CLOUDOPS_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def dev_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    clone = tmp_path_factory.mktemp("fresh") / "cloudops"
    _copy_working_tree(clone)
    proc = subprocess.Popen(["./dev.sh", "--port", "0"], cwd=clone, env=_newcomer_environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    host = DevHost(proc, clone)
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                host.output.append(line)
                if match := re.search(r"CloudOps local host\s+(http://\S+)", line):
                    host.base_url = match.group(1)
                if line.startswith("demo: "):
                    ready.set()
        ready.set()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        ready.wait(BOOTSTRAP_SECONDS)
        assert any(line.startswith("demo: project 'demo'") for line in host.output), (
            "./dev.sh did not start the demo:\n" + "".join(host.output[-60:]))
        yield host
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        drainer.join(10)
        stop_embedded_server(clone / ".cloudops")


def _task(host: DevHost, task_id: str) -> dict[str, Any]:
    r = host.http.get(host.url(f"/api/tasks/{task_id}"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _run(host: DevHost, env: str, path: str, body: dict[str, Any],
         timeout: float = 180) -> dict[str, Any]:
    r = host.http.post(host.url(f"{ENV}/{env}/{path}"), json=body, timeout=30)
    assert r.status_code == 202, r.text
    task_id = r.json()["id"]
    return wait_until(lambda: (t := _task(host, task_id))["status"] not in (
        "queued", "waiting", "running") and t, f"task {task_id} ({path})", timeout)


def _environment(host: DevHost, env: str) -> dict[str, Any]:
    r = host.http.get(host.url(f"{ENV}/{env}"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _app(url: str) -> dict[str, Any]:
    r = requests.get(url.rstrip("/") + "/version", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _rows(host: DevHost, database: str) -> int:
    with psycopg.connect(host.database_url(database)) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])  # type: ignore[index]


def _all_tasks(host: DevHost) -> list[dict[str, Any]]:
    r = host.http.get(host.url("/api/tasks?project=demo&limit=100"), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.timeout(BOOTSTRAP_SECONDS + 300)
def test_a_fresh_clone_runs_every_demo_operation_for_real(dev_host: DevHost) -> None:
    host = dev_host
    # The first start deploys 1.0.0 to each environment as a real task.
    dev = wait_until(lambda: (e := _environment(host, "dev"))["url"] and e, "dev's URL", 180)
    wait_until(lambda: all(t["status"] == "succeeded" for t in _all_tasks(host)),
               "the first deploys", 180)
    assert _app(dev["url"])["version"] == "1.0.0"
    assert _app(_environment(host, "staging")["url"])["version"] == "1.0.0"

    deployed = _run(host, "dev", "deployments", {"version": "1.1.0"})
    assert deployed["status"] == "succeeded", deployed
    before_restart = _app(dev["url"])
    assert before_restart["version"] == "1.1.0"

    broken = _run(host, "dev", "deployments", {"version": "2.0-broken"})
    assert broken["status"] == "failed" and "health" in broken["error"], broken
    assert _app(dev["url"])["version"] == "1.1.0"  # the old version kept serving

    restarted = _run(host, "dev", "restarts", {"workload": "web"})
    assert restarted["status"] == "succeeded", restarted
    after_restart = _app(dev["url"])
    assert after_restart["pid"] != before_restart["pid"]
    assert after_restart["startedAt"] > before_restart["startedAt"]
    assert after_restart["version"] == "1.1.0"

    demo_db = "cloudops_demo_dev"
    backup = _run(host, "dev", "backups", {})
    assert backup["status"] == "succeeded", backup
    assert _rows(host, demo_db) == 5
    with psycopg.connect(host.database_url(demo_db)) as conn:
        conn.execute("DELETE FROM customers WHERE id > 1")
    assert _rows(host, demo_db) == 1
    restored = _run(host, "dev", "restores", {"backupId": backup["result"]["backup"]["id"]})
    assert restored["status"] == "succeeded", restored
    assert _rows(host, demo_db) == 5

    sandbox = _run(host, "dev", "sandboxes", {"name": "try-it", "ttlHours": 1})
    assert sandbox["status"] == "succeeded", sandbox
    sandbox_env = _environment(host, "try-it")
    assert sandbox_env["url"] and sandbox_env["url"] != dev["url"]
    assert _app(sandbox_env["url"])["version"] == "1.1.0"
    assert _rows(host, sandbox_env["database"]["databaseName"]) == 5

    script = _run(host, "dev", "scripts/cleanup-report/runs",
                  {"parameters": {"path": str(host.clone / "docs"), "days": 0}})
    assert script["status"] == "succeeded", script

    ended = {t["id"]: t for t in _all_tasks(host)}
    assert ended.pop(broken["id"])["status"] == "failed"
    assert {t["status"] for t in ended.values()} == {"succeeded"}, [
        (t["operation"], t["status"], t.get("error")) for t in ended.values()]
