"""Browser fixtures: our app on the local host serving the freshly built ``web/dist``, and
Debian Chromium driven by Python Playwright (``executable_path``), signed in through the
Easy Auth cookie the local host reads.

The host here is our own (``--web web/dist`` explicitly), not the shared ``running_host``:
the host reads ``staticwebapp.config.json`` when it binds, so it must start after the build.
``TestAgent`` plays a self-hosted agent over the real agent API so a test decides when a
task's logs and progress arrive (a noop target finishes in milliseconds).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from localhost.easyauth import COOKIE, principal_cookie
from scripts.build_web import build
from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Records every WebSocket the page opens, so a test can kill the live connection.
TRACK_SOCKETS = """(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();"""


@pytest.fixture(scope="session")
def web_dist() -> Path:
    if not (ROOT / "node_modules" / "@microsoft" / "signalr").is_dir():
        pytest.fail("node_modules missing: run scripts/bootstrap.sh (npm ci)")
    return build()


@pytest.fixture(scope="session")
def web_host(web_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin, name = create_throwaway_database("cloudops_web")
    # the notification pages' tests send to a webhook sink on http://127.0.0.1
    host = start_host(with_database(admin, name), tmp_path_factory.mktemp("web-home"),
                      "--web", str(web_dist), env={"CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK": "true"})
    yield host
    stop_host(host)
    drop_database(admin, name)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is missing: ./test.sh installs the Debian package 'chromium'")
    from playwright.sync_api import expect, sync_playwright

    # A loaded 2-core box can take seconds to round-trip a task: wait longer.
    expect.set_options(timeout=15_000)

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class User:
    id: str
    name: str
    roles: tuple[str, ...]

    @property
    def cookie(self) -> str:
        return principal_cookie(self.id, self.name, list(self.roles))


ADMIN = User("u-admin", "ada@example.com", ("admin",))
OPERATOR = User("u-oper", "otto@example.com", ("operator",))
READER = User("u-reader", "rita@example.com", ("reader",))


class Pages:
    """Opens browser pages on the web host, signed in as a user (or anonymous)."""

    def __init__(self, browser: Any, host: RunningHost) -> None:
        self.browser = browser
        self.host = host
        self.contexts: list[Any] = []

    def open(self, user: User | None, path: str | None = "/", *,
             track_sockets: bool = False) -> Any:
        context = self.browser.new_context(base_url=self.host.base_url,
                                           viewport={"width": 1280, "height": 860})
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        if user is not None:
            context.add_cookies([{"name": COOKIE, "value": user.cookie,
                                  "url": self.host.base_url}])
        if track_sockets:
            context.add_init_script(TRACK_SOCKETS)
        page = context.new_page()
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        if path is not None:
            page.goto(path)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any, web_host: RunningHost) -> Iterator[Pages]:
    opened = Pages(browser, web_host)
    yield opened
    opened.close()


def api_session(host: RunningHost, user: User) -> requests.Session:
    s = requests.Session()
    s.cookies.set(COOKIE, user.cookie)
    s.headers["Content-Type"] = "application/json"
    return s


def call(s: requests.Session, host: RunningHost, method: str, path: str,
         body: Any = None, expect: int | tuple[int, ...] = (200, 201, 202, 204)) -> Any:
    response = s.request(method, host.url(path), data=None if body is None else json.dumps(body),
                         timeout=30)
    expected = (expect,) if isinstance(expect, int) else expect
    assert response.status_code in expected, (
        f"{method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


class TestAgent:
    """A self-hosted agent played by the test through the real agent API."""

    __test__ = False

    def __init__(self, host: RunningHost, admin: requests.Session, pool: str) -> None:
        self.host = host
        token = call(admin, host, "POST", f"/api/pools/{pool}/registration-tokens", {})["token"]
        reply = requests.post(host.url("/api/agent/register"), timeout=30,
                              json={"token": token, "name": f"web-test-{pool}", "labels": [],
                                    "version": "test", "os": "linux"})
        assert reply.status_code == 201, reply.text
        self.id = reply.json()["agentId"]
        self.headers = {"Authorization": f"Bearer {reply.json()['key']}"}

    def next_job(self, wait: float = 20) -> dict[str, Any]:
        reply = requests.get(self.host.url(f"/api/agent/jobs/next?wait={wait}"),
                             headers=self.headers, timeout=wait + 10)
        assert reply.status_code == 200, f"no job within {wait}s: {reply.status_code}"
        return dict(reply.json())

    def log(self, job: dict[str, Any], lines: list[str], progress: int | None = None) -> None:
        body: dict[str, Any] = {"lines": lines}
        if progress is not None:
            body["progress"] = progress
        reply = requests.post(self.host.url(f"/api/agent/jobs/{job['id']}/logs"),
                              headers=self.headers, json=body, timeout=30)
        assert reply.status_code == 202, reply.text

    def finish(self, job: dict[str, Any], status: str = "succeeded",
               result_body: dict[str, Any] | None = None) -> None:
        reply = requests.post(self.host.url(f"/api/agent/jobs/{job['id']}/result"),
                              headers=self.headers,
                              json={"status": status, "result": result_body or {}}, timeout=30)
        assert reply.status_code == 200, reply.text

    def finish_backup(self, job: dict[str, Any], data: bytes = b"\0" * 2048,
                      **details: Any) -> None:
        """Upload the dump and report it, as a real agent does (a backup row whose
        artifact storage does not hold is forgotten); ``details`` join the result."""
        import hashlib

        put = requests.put(job["payload"]["uploadUrl"], data=data, timeout=30,
                           headers={"x-ms-blob-type": "BlockBlob"})
        assert put.status_code < 300, put.text
        self.finish(job, result_body={"artifact": job["payload"]["artifact"],
                                      "sizeBytes": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest(), **details})


@dataclass
class World:
    """A project with a noop environment and an agent-run one, plus the agent."""

    project: dict[str, Any]
    noop_env: dict[str, Any]
    agent_env: dict[str, Any]
    agent: TestAgent
    admin: requests.Session


@pytest.fixture(scope="session")
def world(web_host: RunningHost) -> World:
    host = web_host
    admin = api_session(host, ADMIN)
    project = call(admin, host, "POST", "/api/projects",
                   {"slug": "webshop", "name": "Web shop", "description": "The storefront"})
    noop_env = call(admin, host, "POST", "/api/projects/webshop/environments",
                    {"slug": "dev", "name": "Dev", "target": {"type": "noop"}})
    call(admin, host, "POST", "/api/pools", {"name": "web-pool", "description": "test agents"})
    call(admin, host, "POST", "/api/projects/webshop/scripts", {
        "name": "deploy", "description": "Deploy a version", "argv": ["./deploy.sh", "{version}"],
        "parameters": [{"name": "version", "type": "string"}]})
    call(admin, host, "POST", "/api/projects/webshop/scripts", {
        "name": "reindex", "description": "Rebuild the search index",
        "argv": ["./reindex.sh", "--batch", "{batch}", "--mode", "{mode}", "--dry={dry}"],
        "parameters": [
            {"name": "batch", "type": "integer", "default": 500, "description": "rows per batch"},
            {"name": "mode", "type": "string", "enum": ["fast", "full"], "default": "fast"},
            {"name": "dry", "type": "boolean", "default": True}]})
    agent_env = call(admin, host, "POST", "/api/projects/webshop/environments",
                     {"slug": "staging", "name": "Staging",
                      "database": {"connection": "staging-db"},
                      "target": {"type": "agent", "pool": "web-pool", "deployScript": "deploy"}})
    agent = TestAgent(host, admin, "web-pool")
    return World(project, noop_env, agent_env, agent, admin)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page (axe from the npm package)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluate runs through DevTools, so the page's CSP (no inline scripts) allows it.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture(autouse=True)
def no_task_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that fails midway must not leave its task holding an environment (FIFO),
    or every later test's operation would wait behind it: cancel what is still open and
    have the test agent stop the jobs it was running."""
    yield
    if "world" not in request.fixturenames:
        return
    cancel_open_tasks(request.getfixturevalue("world"), request.getfixturevalue("web_host"),
                      "webshop")


def cancel_open_tasks(world: World, host: RunningHost, project: str) -> None:
    """Cancel the project's open tasks and have the test agent stop the jobs it runs."""
    open_tasks = call(world.admin, host, "GET",
                      f"/api/tasks?project={project}&status=queued,waiting,running")["items"]
    for task in open_tasks:
        call(world.admin, host, "POST", f"/api/tasks/{task['id']}/cancel", {},
             expect=(202, 409))
    if open_tasks:
        beat = requests.post(host.url("/api/agent/heartbeat"), headers=world.agent.headers,
                             json={}, timeout=30).json()
        for job_id in beat.get("cancel", []):
            requests.post(host.url(f"/api/agent/jobs/{job_id}/result"),
                          headers=world.agent.headers, timeout=30,
                          json={"status": "cancelled", "error": "test cleanup"})
