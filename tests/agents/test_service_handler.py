"""Restart of a ``service`` workload: the systemd path against a fake ``systemctl`` (an
executable that records its argv and answers like systemd would), the supervisor path
against a real process supervisor, and the clean failures (unknown service, bad
environment, no systemctl, no supervisor)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.handlers import JobContext, JobFailed, handler_for
from tests.agents.supervisor_helpers import alive, demo_config, front, start_supervisor

UNIT = "shop-web@dev.service"

FAKE_SYSTEMCTL = """#!{python}
import json, pathlib, sys
here = pathlib.Path({here!r})
with open(here / "calls.jsonl", "a") as f:
    f.write(json.dumps(sys.argv) + "\\n")
mode, command = {mode!r}, sys.argv[1]
if command == "restart":
    if mode == "refuse":
        print("Job for " + sys.argv[2] + " failed because the control process exited.")
        sys.exit(1)
    sys.exit(0)
if command == "is-active":
    counter = here / "is-active-calls"
    calls = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(calls + 1))
    if mode == "failed":
        print("failed")
        sys.exit(3)
    print("activating" if calls == 0 else "active")
    sys.exit(3 if calls == 0 else 0)
if command == "status":
    print("x " + sys.argv[2] + " - Shop web")
    print("   Active: failed (Result: exit-code)")
    print("   Main process exited, code=exited, status=1/FAILURE")
    sys.exit(3)
if command == "show":
    print("4242")
    sys.exit(0)
sys.exit(1)
"""


def fake_systemctl(tmp_path: Path, mode: str = "ok") -> Path:
    path = tmp_path / f"systemctl-{mode}"
    path.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, here=str(tmp_path),
                                          mode=mode))
    path.chmod(0o755)
    return path


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def _ctx(tmp_path: Path, services: dict[str, dict[str, Any]]
         ) -> tuple[JobContext, list[str], list[int]]:
    lines: list[str] = []
    progress: list[int] = []
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      work_dir=str(tmp_path), services=services)
    return JobContext(job_id="j", kind="restart", config=cfg, log=lines.append,
                      progress=progress.append), lines, progress


def restart(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Through the agent's dispatch, as the runner calls it."""
    return handler_for("restart")(payload, ctx)


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent.handlers.service.POLL_SECONDS", 0.01)


def test_systemd_restart_runs_systemctl_and_waits_until_active(tmp_path: Path) -> None:
    systemctl = fake_systemctl(tmp_path)
    ctx, lines, progress = _ctx(tmp_path, {"web": {
        "systemd": "shop-web@{environment}.service", "systemctl": str(systemctl)}})
    result = restart({"kind": "service", "service": "web", "environment": "dev"}, ctx)
    assert result == {"service": "web", "unit": UNIT, "state": "active", "pid": 4242}
    exe = str(systemctl)
    assert calls(tmp_path) == [
        [exe, "restart", UNIT], [exe, "is-active", UNIT], [exe, "is-active", UNIT],
        [exe, "show", UNIT, "--property=MainPID", "--value"]]
    assert f"{UNIT}: activating" in lines and f"{UNIT}: active" in lines
    assert progress == sorted(progress) and progress[-1] == 100


def test_a_unit_that_fails_fails_fast_with_its_status(tmp_path: Path) -> None:
    systemctl = fake_systemctl(tmp_path, "failed")
    ctx, _lines, _progress = _ctx(tmp_path, {"web": {
        "systemd": "shop-web@{environment}.service", "systemctl": str(systemctl)}})
    with pytest.raises(JobFailed, match=r"shop-web@dev\.service failed") as failed:
        restart({"kind": "service", "service": "web", "environment": "dev",
                 "timeoutSeconds": 60}, ctx)
    assert "status=1/FAILURE" in str(failed.value)
    exe = str(systemctl)
    assert calls(tmp_path) == [[exe, "restart", UNIT], [exe, "is-active", UNIT],
                               [exe, "status", UNIT, "--no-pager"]]


def test_a_refused_restart_fails_with_systemctl_output(tmp_path: Path) -> None:
    systemctl = fake_systemctl(tmp_path, "refuse")
    ctx, _lines, _progress = _ctx(tmp_path, {"web": {
        "systemd": "shop-web@{environment}.service", "systemctl": str(systemctl)}})
    with pytest.raises(JobFailed, match=r"systemctl restart shop-web@dev.service failed "
                                        r"\(exit 1\)[\s\S]*control process exited"):
        restart({"kind": "service", "service": "web", "environment": "dev"}, ctx)


def test_no_systemctl_is_a_clean_failure(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    message = ("systemctl not found on this agent: service web needs systemd "
               "(or configure a supervisor)")
    ctx, _l, _p = _ctx(tmp_path, {"web": {"systemd": "shop-web@{environment}.service",
                                          "systemctl": str(tmp_path / "no-such")}})
    with pytest.raises(JobFailed) as missing:
        restart({"kind": "service", "service": "web", "environment": "dev"}, ctx)
    assert str(missing.value) == message
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    ctx, _l, _p = _ctx(tmp_path, {"web": {"systemd": "shop-web@{environment}.service"}})
    with pytest.raises(JobFailed) as not_on_path:
        restart({"kind": "service", "service": "web", "environment": "dev"}, ctx)
    assert str(not_on_path.value) == message


def test_unknown_service_names_the_known_ones(tmp_path: Path) -> None:
    ctx, _l, _p = _ctx(tmp_path, {"web": {"systemd": "a.service"},
                                  "api": {"systemd": "b.service"}})
    with pytest.raises(JobFailed, match=r"no service named 'db' \(it knows: api, web\)"):
        restart({"kind": "service", "service": "db", "environment": "dev"}, ctx)


@pytest.mark.parametrize("environment", ["Dev", "../etc", "dev service", "dev;reboot", ""])
def test_bad_environment_is_refused_before_anything_runs(tmp_path: Path,
                                                         environment: str) -> None:
    systemctl = fake_systemctl(tmp_path)
    ctx, _l, _p = _ctx(tmp_path, {"web": {"systemd": "shop-web@{environment}.service",
                                          "systemctl": str(systemctl)}})
    with pytest.raises(JobFailed, match="environment"):
        restart({"kind": "service", "service": "web", "environment": environment}, ctx)
    assert not (tmp_path / "calls.jsonl").exists()


def test_supervisor_restart_gives_the_environment_a_new_healthy_process(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    sup = start_supervisor(state, demo_config(tmp_path))
    try:
        before = sup.client().deploy("demo-web@sandbox-pr-1", "1.0")
        ctx, lines, progress = _ctx(tmp_path, {"web": {
            "supervisor": str(state), "app": "demo-web@{environment}"}})
        result = restart({"kind": "service", "service": "web",
                          "environment": "sandbox-pr-1"}, ctx)
        assert result["app"] == "demo-web@sandbox-pr-1" and result["state"] == "active"
        assert result["service"] == "web" and result["version"] == "1.0"
        assert result["pid"] != before["pid"] and result["startedAt"] > before["startedAt"]
        assert front(before["url"])["pid"] == result["pid"]
        assert not alive(int(before["pid"]))
        assert progress[-1] == 100 and any("is running" in line for line in lines)

        with pytest.raises(JobFailed, match="no app 'demo-web@dev'"):
            restart({"kind": "service", "service": "web", "environment": "dev"}, ctx)
    finally:
        sup.stop()
    with pytest.raises(JobFailed, match=f"the process supervisor at {state} is not running"):
        restart({"kind": "service", "service": "web", "environment": "sandbox-pr-1"}, ctx)


def test_restart_without_kind_service_is_still_a_kubernetes_restart(tmp_path: Path) -> None:
    ctx, _l, _p = _ctx(tmp_path, {"web": {"systemd": "a.service"}})
    with pytest.raises(JobFailed, match="no cluster configured"):
        restart({"cluster": "dev", "namespace": "shop", "workload": "web",
                 "kind": "deployment"}, ctx)


def test_services_round_trip_through_the_agent_config() -> None:
    services = {"web": {"systemd": "shop-web@{environment}.service"}}
    cfg = AgentConfig.from_json({"url": "u", "agentId": "a", "name": "n", "pool": "p",
                                 "key": "k", "services": services})
    assert cfg.services == services and cfg.to_json()["services"] == services
    assert AgentConfig(url="u", agent_id="a", name="n", pool="p", key="k").services == {}
