"""Schemathesis over the whole OpenAPI document on the local host: no 5xx, and every
response conforms to the schema. Bounded (examples and time) to keep the suite fast.

The authenticated run is seeded: real projects, environments, tasks, backups, schedules,
rules, scripts, roles, resources, grants, pipeline keys, pools, agents and a leased job are
created first, and ``schemathesis_hooks.py`` puts their ids into the generated requests,
so every operation is reached with valid ids (not only answered 404). The per-operation
coverage (status codes seen, from the HAR report) is printed and checked.

A 5xx from our server (or a network error: the host died or hung) fails the test. An
error inside the fuzzer itself (schemathesis/hypothesis "Runtime Error", a failed health
check) is told apart from that: the run is repeated once, and a fuzzer that crashes twice
is reported as an expected failure naming the crash, never as a pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from psycopg.rows import dict_row

from localhost.easyauth import principal_cookie
from tests.conftest import ROOT, RunningHost
from tests.waiting import wait_until

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
# What schemathesis reports when it, not our server, went wrong (the titles of its
# engine errors). Anything else it reports (a network error, an unresponsive operation, a
# hook error, a schema error) is about our host, our schema or our hooks: a real failure.
FUZZER_CRASHES = {"Runtime Error", "Failed Health Check"}
# Operations no seeding can reach past their signature check, with the reason (they
# answer 403, as they should, and are never 404).
NO_SUCCESS_EXPECTED = {
    "GET /api/artifacts/{name}": "needs a signed (SAS-like) URL the fuzzer cannot forge",
    "PUT /api/artifacts/{name}": "needs a signed (SAS-like) URL the fuzzer cannot forge",
}


@dataclass
class Run:
    """One schemathesis run: its process, JSON run report and HAR interactions."""

    process: subprocess.CompletedProcess[str]
    report: dict[str, Any] | None
    interactions: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def server_failures(self) -> list[dict[str, Any]]:
        return list(self.report["failures"]) if self.report else []

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.report["errors"]) if self.report else []

    @property
    def fuzzer_crashed(self) -> bool:
        """The fuzzer itself failed (not a check on our responses): no report at all, or
        only errors of the fuzzer's own kinds."""
        if self.report is None:
            return True
        return bool(self.errors) and all(e["title"] in FUZZER_CRASHES for e in self.errors)

    def output(self) -> str:
        return self.process.stdout[-6000:] + self.process.stderr[-3000:]


def run_schemathesis(host: RunningHost, tmp: Path, *headers: str, budget: int,
                     seeds: Path | None = None) -> Run:
    args = [str(ROOT / ".venv" / "bin" / "schemathesis"), "run",
            host.url("/api/openapi.json"), "--checks",
            "not_a_server_error,response_schema_conformance", "--max-examples", "4",
            # One worker: hypothesis describes filters with ast.parse, which CPython 3.11
            # before 3.11.8 can fail from two threads at once ("AST constructor recursion
            # depth mismatch") — a runtime error in the fuzzer, not a finding about the API.
            "--phases", "coverage,fuzzing", "--seed", "7", "--workers", "1",
            "--max-time", str(budget), "--request-timeout", "10",
            "--report", "json,har", "--report-dir", str(tmp),
            "--report-json-path", str(tmp / "run.json"),
            "--report-har-path", str(tmp / "run.har")]
    for header in headers:
        args += ["-H", header]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.pipeline.schemathesis_hooks",
           "PYTHONPATH": str(ROOT)}
    env.pop("CLOUDOPS_FUZZ_SEEDS", None)
    if seeds is not None:
        env["CLOUDOPS_FUZZ_SEEDS"] = str(seeds)
    for stale in ("run.json", "run.har"):
        (tmp / stale).unlink(missing_ok=True)
    process = subprocess.run(args, capture_output=True, text=True, timeout=budget + 120,
                             cwd=ROOT, env=env)
    report_file, har_file = tmp / "run.json", tmp / "run.har"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    interactions = []
    if har_file.exists():
        for entry in json.loads(har_file.read_text())["log"]["entries"]:
            interactions.append((entry["request"]["method"],
                                 urlsplit(entry["request"]["url"]).path,
                                 int(entry["response"]["status"])))
    return Run(process, report, interactions)


def fuzz(host: RunningHost, tmp: Path, *headers: str, budget: int,
         seeds: Path | None = None) -> Run:
    """Run schemathesis; fail on what our server did, tell the fuzzer's own crash apart."""
    run = run_schemathesis(host, tmp, *headers, budget=budget, seeds=seeds)
    if run.fuzzer_crashed and not run.server_failures:
        first = run.errors or run.output()
        run = run_schemathesis(host, tmp, *headers, budget=budget, seeds=seeds)  # once
        if run.fuzzer_crashed and not run.server_failures:
            pytest.xfail(f"schemathesis itself crashed twice (not a finding about the API): "
                         f"{first}; then {run.errors or run.output()}")
    assert not run.server_failures, (
        f"the server failed checks: {json.dumps(run.server_failures, indent=1)}\n"
        + run.output())
    assert not run.errors, f"errors talking to the host: {run.errors}\n{run.output()}"
    assert run.process.returncode == 0, run.output()
    return run


# --- seeding real objects ----------------------------------------------------------


def _ok(response: requests.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201, 202)), \
        f"{response.request.method} {response.url}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def _ended(admin: Any, host: RunningHost, task_id: str) -> dict[str, Any]:
    return wait_until(lambda: (t := admin.get(host.url(f"/api/tasks/{task_id}")).json())
                      ["status"] in TERMINAL and t, f"task {task_id} to end", 60)


def seed(host: RunningHost) -> dict[str, Any]:
    """Real objects for every path parameter, kept ones and ones for destructive
    operations to take away; what ``schemathesis_hooks.py`` reads."""
    admin = host.session("fuzz", ("admin",))
    tag = secrets.token_hex(3)
    api = host.url

    def project(slug: str) -> str:
        _ok(admin.post(api("/api/projects"), json={"slug": slug, "name": slug}))
        return slug

    def environment(project: str, slug: str, target: dict[str, Any] | None = None) -> str:
        _ok(admin.post(api(f"/api/projects/{project}/environments"), json={
            "slug": slug, "name": slug, "target": target or {"type": "noop"}}))
        return slug

    kept, doomed = project(f"fz-{tag}"), project(f"fz-gone-{tag}")
    env = environment(kept, "dev")
    gone_env = environment(kept, "gone")
    base = f"/api/projects/{kept}/environments/{env}"

    task = _ok(admin.post(api(f"{base}/deployments"), json={"version": "1"}))["id"]
    _ended(admin, host, task)
    sandbox = _ok(admin.post(api(f"{base}/sandboxes"), json={"name": "sb", "ttlHours": 2}))
    _ended(admin, host, sandbox["id"])
    sandboxes = [e["slug"] for e in _ok(admin.get(api(f"/api/projects/{kept}/environments")))
                 ["items"] if e["slug"] not in ("dev", "gone")]
    assert sandboxes, "the sandbox environment was not created"

    with psycopg.connect(host.database_url, row_factory=dict_row) as conn:
        env_id = conn.execute("SELECT e.id FROM environments e JOIN projects p ON"
                              " p.id = e.project_id WHERE p.slug = %s AND e.slug = %s",
                              (kept, env)).fetchone()["id"]
        backups = [str(conn.execute(
            "INSERT INTO backups (environment_id, task_id, location, size_bytes, sha256,"
            " kind) VALUES (%s, %s, %s, 3, %s, 'backup') RETURNING id",
            (env_id, task, f"fuzz/{tag}-{n}.dump", hashlib.sha256(b"abc").hexdigest())
        ).fetchone()["id"]) for n in range(2)]

    def schedule() -> str:
        return str(_ok(admin.post(api(f"{base}/backup-schedules"),
                                  json={"cron": "0 0 3 * * *"}))["id"])

    def rule(name: str) -> str:
        return str(_ok(admin.post(api(f"/api/projects/{kept}/notification-rules"), json={
            "name": name, "events": ["task.succeeded"], "channel": "teams",
            "webhookUrl": "https://example.com/hook"}))["id"])

    def role(url: str, user: str) -> str:
        return str(_ok(admin.post(api(url), json={
            "principalType": "user", "principalId": user, "role": "reader"}))["id"])

    def script(name: str) -> str:
        _ok(admin.post(api(f"/api/projects/{kept}/scripts"), json={
            "name": name, "argv": ["echo", "hi"], "parameters": [], "timeoutSeconds": 60}))
        return name

    def resource(name: str) -> str:
        _ok(admin.post(api("/api/resources"), json={"kind": "connection", "name": name}))
        return f"connection:{name}"

    def grant(resource_id: str) -> str:
        return str(_ok(admin.post(api(f"/api/resources/{resource_id}/grants"),
                                  json={"project": kept}))["id"])

    def pipeline_key(name: str) -> str:
        return str(_ok(admin.post(api("/api/pipeline-keys"),
                                  json={"name": name, "expiresInDays": 30}))["id"])

    pool = f"fz-pool-{tag}"
    _ok(admin.post(api("/api/pools"), json={"name": pool}))
    _ok(admin.post(api(f"/api/resources/pool:{pool}/grants"), json={"project": kept}))

    def agent(name: str) -> dict[str, Any]:
        token = _ok(admin.post(api(f"/api/pools/{pool}/registration-tokens"), json={}))
        return dict(_ok(requests.post(api("/api/agent/register"), timeout=30, json={
            "token": token["token"], "name": name, "labels": ["linux"]})))

    worker, victim = agent(f"fz-{tag}"), agent(f"fz-gone-{tag}")
    bearer = {"Authorization": f"Bearer {worker['key']}"}
    agents_env = environment(kept, "agents", {"type": "agent", "pool": pool,
                                              "labels": ["linux"], "cluster": "local"})
    on_agent = _ok(admin.post(api(f"/api/projects/{kept}/environments/{agents_env}/"
                                  "restarts"), json={"workload": "web"}))["id"]
    try:
        job = wait_until(lambda: (r := requests.get(api("/api/agent/jobs/next?wait=1"),
                                                    headers=bearer, timeout=30))
                         .status_code == 200 and r.json(), "the seeded job to be handed out", 30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {admin.get(api(f'/api/tasks/{on_agent}')).json()}") from None

    kept_resource = resource(f"fz-{tag}")
    params = {
        "project": kept, "env": env, "id": task, "backup": backups[0],
        "schedule": schedule(), "rule": rule("kept"), "script": script("hello"),
        "assignment": role(f"/api/projects/{kept}/roles", "fz-reader"),
        "resource": kept_resource, "grant": grant(kept_resource),
        "key": pipeline_key(f"fz-{tag}"), "pool": pool, "agent": worker["name"],
        "action": "enable", "job": job["id"], "group": f"task:{task}",
        "asset": "index.html", "name": f"fz-{tag}.txt",
    }
    projects_env = "DELETE /api/projects/{project}/environments/{env}"
    operations = {
        "DELETE /api/projects/{project}": {"project": doomed},
        projects_env: {"env": gone_env},
        f"{projects_env}/backups/{{backup}}": {"backup": backups[1]},
        f"{projects_env}/backup-schedules/{{schedule}}": {"schedule": schedule()},
        "DELETE /api/projects/{project}/notification-rules/{rule}": {"rule": rule("gone")},
        "DELETE /api/projects/{project}/roles/{assignment}": {
            "assignment": role(f"/api/projects/{kept}/roles", "fz-gone")},
        "DELETE /api/roles/{assignment}": {"assignment": role("/api/roles", f"fz-{tag}")},
        "DELETE /api/projects/{project}/scripts/{script}": {"script": script("gone")},
        "DELETE /api/resources/{resource}": {"resource": resource(f"fz-gone-{tag}")},
        "DELETE /api/resources/{resource}/grants/{grant}": {"grant": grant(kept_resource)},
        "DELETE /api/pipeline-keys/{key}": {"key": pipeline_key(f"fz-gone-{tag}")},
        "POST /api/pools/{pool}/agents/{agent}/{action}": {"agent": victim["name"],
                                                           "action": "disable"},
        "POST /api/projects/{project}/environments/{env}/extend": {"env": sandboxes[0]},
        "POST /api/projects/{project}/environments/{env}/teardown": {"env": sandboxes[0]},
    }
    headers = {f"{method} {path}": bearer for path, methods in _document(host)["paths"].items()
               if path.startswith("/api/agent/") and path != "/api/agent/register"
               for method in (m.upper() for m in methods)}
    # a seeded agent's poll is held up to ``wait`` seconds: keep it inside the request timeout
    query = {"GET /api/agent/jobs/next": {"wait": "1"}}
    return {"params": params, "operations": operations, "headers": headers, "query": query}


# --- per-operation coverage ----------------------------------------------------------


def _document(host: RunningHost) -> dict[str, Any]:
    """The OpenAPI document the host serves (what schemathesis reads)."""
    return dict(_ok(requests.get(host.url("/api/openapi.json"), timeout=30)))


def coverage(document: dict[str, Any],
             interactions: list[tuple[str, str, int]]) -> dict[str, dict[int, int]]:
    """Status codes (with counts) each OpenAPI operation answered, by "METHOD /path"."""
    templates = []
    for path, methods in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$")
        templates.extend((m.upper(), path, pattern) for m in methods
                         if m in ("get", "post", "put", "patch", "delete"))
    # literal paths first: /api/pipeline-keys is not /api/pipeline-keys/{key}
    templates.sort(key=lambda t: t[1].count("{"))
    seen: dict[str, dict[int, int]] = {f"{m} {p}": defaultdict(int) for m, p, _ in templates}
    for method, path, status in interactions:
        for m, template, pattern in templates:
            if m == method and pattern.match(path):
                seen[f"{m} {template}"][status] += 1
                break
    return {op: dict(codes) for op, codes in seen.items()}


def print_coverage(table: dict[str, dict[int, int]]) -> None:
    print(f"\nschemathesis coverage: {len(table)} operations")
    for op, codes in sorted(table.items()):
        shown = ", ".join(f"{c} x{n}" for c, n in sorted(codes.items())) or "not called"
        print(f"  {op:<78} {shown}")
    answered = sum(1 for c in table.values() if any(200 <= s < 300 for s in c))
    print(f"  {answered}/{len(table)} operations answered 2xx at least once")


# --- the tests ---------------------------------------------------------------------


def test_authenticated_fuzzing_reaches_every_operation_and_finds_no_server_errors(
        running_host: RunningHost, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps(seed(running_host)))
    cookie = principal_cookie("fuzz", "fuzz@example.com", ["admin"])
    run = fuzz(running_host, tmp_path, f"Cookie: StaticWebAppsAuthCookie={cookie}",
               budget=60, seeds=seeds)
    table = coverage(_document(running_host), run.interactions)
    # schemathesis reads its schema from this operation and does not fuzz it again
    # (_document above fetched it too, asserting a 200)
    table["GET /api/openapi.json"] = table["GET /api/openapi.json"] or {200: 1}
    print_coverage(table)
    not_called = [op for op, codes in table.items() if not codes]
    only_404 = [op for op, codes in table.items() if codes and set(codes) == {404}]
    only_auth = [op for op, codes in table.items() if codes and set(codes) <= {401, 403}
                 and op not in NO_SUCCESS_EXPECTED]
    assert not_called == [], f"operations the fuzzer never called: {not_called}"
    assert only_404 == [], f"operations answering only 404 (missing test data): {only_404}"
    assert only_auth == [], f"operations answering only 401/403 (missing auth): {only_auth}"
    # with seeded ids the core of most operations runs; those never answering 2xx are
    # printed above (mostly bodies the generator builds but the API's stricter checks
    # refuse with 422, naming the field)


def test_unauthenticated_fuzzing_finds_no_server_errors(running_host: RunningHost,
                                                        tmp_path: Path) -> None:
    fuzz(running_host, tmp_path, budget=10)


def test_the_fuzzer_s_own_crash_is_told_apart_from_a_server_error() -> None:
    """The verdict on a run: server failures always fail; only the fuzzer's own error
    kinds (and a missing report: it died) count as its crash."""
    done = subprocess.CompletedProcess(["schemathesis"], 1, "", "")

    def report(failures: list[Any], errors: list[str]) -> dict[str, Any]:
        return {"failures": failures, "errors": [{"title": t, "count": 1} for t in errors]}

    assert Run(done, None).fuzzer_crashed
    assert Run(done, report([], ["Runtime Error"])).fuzzer_crashed
    assert not Run(done, report([], ["Network Error"])).fuzzer_crashed
    assert not Run(done, report([], ["Runtime Error", "Unresponsive Operation"])).fuzzer_crashed
    server = Run(done, report([{"title": "Server error"}], ["Runtime Error"]))
    assert server.server_failures  # fails the test even beside a fuzzer error
    assert not Run(done, report([], [])).fuzzer_crashed
