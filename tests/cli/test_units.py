"""The CLI's pure parts in-process: pipeline idempotency keys, CI detection, log
neutralising, and the follower's page/resume logic against a scripted API."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import requests

from cli import ci
from cli.client import ApiClient, Auth, Unreachable
from cli.follow import LogPrinter, follow, neutralize

ADO = {"TF_BUILD": "True", "SYSTEM_TEAMPROJECTID": "p1", "BUILD_BUILDID": "42",
       "SYSTEM_JOBATTEMPT": "1", "SYSTEM_TASKINSTANCEID": "s1"}


def test_azure_devops_key_is_stable_per_step_and_changes_per_attempt_step_and_body() -> None:
    key, derived = ci.default_idempotency_key(ADO, "deploy", "/a", {"version": "1"})
    assert derived and key.startswith("ado:p1:42:1:")
    assert ci.default_idempotency_key(ADO, "deploy", "/a", {"version": "1"})[0] == key
    variants = [
        ci.default_idempotency_key({**ADO, "SYSTEM_JOBATTEMPT": "2"}, "deploy", "/a",
                                   {"version": "1"})[0],
        ci.default_idempotency_key({**ADO, "SYSTEM_TASKINSTANCEID": "s2"}, "deploy", "/a",
                                   {"version": "1"})[0],
        ci.default_idempotency_key(ADO, "deploy", "/b", {"version": "1"})[0],
        ci.default_idempotency_key(ADO, "deploy", "/a", {"version": "2"})[0],
        ci.default_idempotency_key(ADO, "backup", "/a", {"version": "1"})[0],
    ]
    assert len({key, *variants}) == 6
    no_job_attempt = {k: v for k, v in ADO.items() if k != "SYSTEM_JOBATTEMPT"}
    staged = ci.default_idempotency_key({**no_job_attempt, "SYSTEM_STAGEATTEMPT": "3"},
                                        "deploy", "/a", {})[0]
    assert staged.startswith("ado:p1:42:3:")


def test_github_and_local_keys() -> None:
    gh = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "2",
          "GITHUB_REPOSITORY": "o/" + "r" * 100}
    key, derived = ci.default_idempotency_key(gh, "deploy", "/a", {})
    assert derived and key.startswith("gh:7:2:") and len(key) <= 200
    local1, from_run = ci.default_idempotency_key({}, "deploy", "/a", {})
    assert not from_run and local1 != ci.default_idempotency_key({}, "deploy", "/a", {})[0]


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False), ({"CI": "true"}, True), ({"CI": "false"}, False), ({"TF_BUILD": "True"}, True),
    ({"GITHUB_ACTIONS": "true"}, True), ({"CI": "0"}, False)])
def test_ci_detection(env: dict[str, str], expected: bool) -> None:
    assert ci.is_ci(env) is expected


def test_task_output_cannot_issue_pipeline_commands() -> None:
    assert "##vso[" not in neutralize("##vso[task.setvariable variable=x]1", "azure-devops")
    assert not neutralize("::add-mask::x", "github-actions").startswith("::")
    out = io.StringIO()
    LogPrinter(out, runner="azure-devops").line(
        {"seq": 1, "at": "2026-01-01T00:00:00Z", "level": "error", "text": "boom"})
    assert out.getvalue() == "2026-01-01T00:00:00.000Z ERROR   ##[error]boom\n"


class ScriptedApi:
    """Answers the follower's GETs from a script of pages; some reads raise first."""

    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        self.asked_after: list[int] = []
        self.status = "running"

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        if path.endswith("/logs"):
            self.asked_after.append(int((params or {})["after"]))
            page = self.pages.pop(0)
            if isinstance(page, Exception):
                raise page
            self.status = page["status"]
            return page
        return {"id": "t", "status": self.status, "progress": 0, "reason": None}


def _line(seq: int) -> dict[str, Any]:
    return {"seq": seq, "at": "2026-01-01T00:00:00Z", "level": "info", "text": f"line {seq}"}


def test_follow_asks_after_the_last_printed_line_and_skips_replayed_ones() -> None:
    api = ScriptedApi([
        {"items": [_line(1), _line(2)], "last": 2, "status": "running"},
        {"items": [_line(2), _line(3)], "last": 3, "status": "running"},  # overlap: replayed
        {"items": [], "last": 3, "status": "running"},
        {"items": [_line(4)], "last": 4, "status": "succeeded"},
    ])
    out = io.StringIO()
    task = follow(api, "t", LogPrinter(out), sleep=lambda _: None)  # type: ignore[arg-type]
    assert task["status"] == "succeeded"
    assert api.asked_after == [0, 2, 3, 3]
    printed = [line.split()[-1] for line in out.getvalue().splitlines() if "line" in line]
    assert printed == ["1", "2", "3", "4"]


def test_client_retries_connection_errors_then_gives_up_with_exit_4() -> None:
    calls: list[str] = []
    client = ApiClient("http://127.0.0.1:9", Auth(), retry_budget=0.3,
                       sleep=lambda _: None)

    def refuse(method: str, url: str, **kw: Any) -> Any:
        calls.append(method)
        raise requests.ConnectionError("Connection refused")

    client.http.request = refuse  # type: ignore[method-assign]
    with pytest.raises(Unreachable) as raised:
        client.get("/api/projects")
    assert raised.value.exit_code == 4 and len(calls) >= 2
    lost = ApiClient("http://127.0.0.1:9", Auth(), retry_budget=5, sleep=lambda _: None)

    def reset(method: str, url: str, **kw: Any) -> Any:
        calls.append("reset")
        raise requests.ConnectionError("Connection aborted: RemoteDisconnected")

    lost.http.request = reset  # type: ignore[method-assign]
    before = len(calls)
    with pytest.raises(Unreachable, match="may or may not have been applied"):
        lost.post("/api/x", {}, idempotent=False)
    assert len(calls) == before + 1  # sent once, never resent


def test_an_expired_entra_token_is_renewed_once() -> None:
    issued: list[str] = []

    def token(scope: str) -> str:
        issued.append(scope)
        return f"t{len(issued)}"

    client = ApiClient("http://api", Auth(aad_scope="api://x/.default", token_source=token),
                       sleep=lambda _: None)
    seen: list[str] = []

    def answer(method: str, url: str, **kw: Any) -> requests.Response:
        seen.append(kw["headers"]["Authorization"])
        response = requests.Response()
        response.status_code = 401 if kw["headers"]["Authorization"] == "Bearer t1" else 200
        response.headers["Content-Type"] = "application/json"
        response._content = b'{"items": []}'
        return response

    client.http.request = answer  # type: ignore[method-assign]
    assert client.get("/api/projects") == {"items": []}
    assert seen == ["Bearer t1", "Bearer t2"] and issued == ["api://x/.default"] * 2


def test_first_contact_gets_a_short_budget_then_the_whole_one() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = ApiClient("http://wrong:1", Auth(), retry_budget=120, first_contact_budget=10,
                       sleep=sleep, clock=lambda: now[0])

    def refuse(method: str, url: str, **kw: Any) -> Any:
        raise requests.ConnectionError("Connection refused")

    client.http.request = refuse  # type: ignore[method-assign]
    with pytest.raises(Unreachable, match="check --url / CLOUDOPS_URL"):
        client.get("/api/projects")
    # gave up within the first-contact budget, and only when the next backoff (at most
    # 8 s: 4 s fixed plus up to 4 s of jitter) would have crossed it
    assert 10 - 8 < now[0] <= 10

    answered = ApiClient("http://api", Auth(), retry_budget=120, first_contact_budget=10,
                         sleep=sleep, clock=lambda: now[0])
    ok = requests.Response()
    ok.status_code, ok._content = 200, b"{}"
    ok.headers["Content-Type"] = "application/json"
    answered.http.request = lambda *a, **kw: ok  # type: ignore[method-assign]
    answered.get("/api/projects")
    answered.http.request = refuse  # type: ignore[method-assign]
    start = now[0]
    with pytest.raises(Unreachable) as raised:
        answered.get("/api/projects")
    assert 120 - 8 < now[0] - start <= 120  # an API that answered once gets the long budget
    assert "CLOUDOPS_URL" not in raised.value.reason


def test_a_host_name_that_does_not_resolve_is_not_retried() -> None:
    calls: list[str] = []
    client = ApiClient("http://no-such-host.invalid", Auth(), retry_budget=120,
                       sleep=lambda _: calls.append("slept"))

    def unresolved(method: str, url: str, **kw: Any) -> Any:
        calls.append(url)
        raise requests.ConnectionError("Failed to resolve: Name or service not known")

    client.http.request = unresolved  # type: ignore[method-assign]
    with pytest.raises(Unreachable, match="name or service not known"):
        client.get("/api/projects")
    assert calls == ["http://no-such-host.invalid/api/projects"]


def test_status_lines_never_repeat_the_status_and_times_have_one_format() -> None:
    out = io.StringIO()
    printer = LogPrinter(out)
    printer.status({"status": "waiting", "reason": "waiting for an agent in pool local"})
    printer.status({"status": "failed", "reason": "deploy.sh exited with code 1"})
    printer.status({"status": "cancelled", "reason": "cancelled by alice@example.com"})
    printer.line({"at": "2026-05-04T08:25:44Z", "level": "info", "text": "a"})
    printer.line({"at": "2026-05-04T08:25:44.603710Z", "level": "info", "text": "b"})
    lines = out.getvalue().splitlines()
    texts = [line.split("NOTE", 1)[1].strip() for line in lines[:3]]
    assert texts == ["task waiting for an agent in pool local",
                     "task failed: deploy.sh exited with code 1",
                     "task cancelled by alice@example.com"]
    assert [line.split()[0] for line in lines[3:]] == ["2026-05-04T08:25:44.000Z",
                                                       "2026-05-04T08:25:44.603Z"]
    stamps = [line.split()[0] for line in lines]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)
