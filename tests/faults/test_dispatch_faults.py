"""Dispatch faults with real ``cloudops-agent`` processes and hand-driven agents through
real orchestrations (issue #22): cancel that waits for the job to really stop, a cancel
that loses to success, orphaned children, big logs, an agent that cannot renew its
lease, a control plane paused past the lease, a NUL in a failing script's error."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from tests.conftest import RunningHost
from tests.faults._harness import (
    TERMINAL,
    fire,
    job_claims,
    lease_of,
    make_env,
    orchestration_received,
    rows,
    settle,
    wait_past,
)
from tests.faults.conftest import AgentFactory
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until


def _pool() -> str:
    return f"pool-{secrets.token_hex(3)}"


def _script(host: RunningHost, pool: str, code: str, timeout: int = 120) -> tuple[Any, str]:
    admin = host.session("alice", ("admin",))
    project, _ = make_env(admin, host, {"type": "agent", "pool": pool, "labels": ["linux"]})
    r = admin.post(host.url(f"/api/projects/{project}/scripts"),
                   json={"name": "work", "argv": [sys.executable, "-c", code],
                         "parameters": [], "timeoutSeconds": timeout})
    assert r.status_code == 201, r.text
    return admin, project


def _run(host: RunningHost, admin: Any, project: str) -> str:
    r = admin.post(host.url(f"/api/projects/{project}/environments/dev/scripts/work/runs"),
                   json={"parameters": {}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _task(host: RunningHost, admin: Any, task_id: str) -> dict[str, Any]:
    return dict(admin.get(host.url(f"/api/tasks/{task_id}")).json())


def _running_on_agent(host: RunningHost, admin: Any, task_id: str) -> None:
    wait_until(lambda: "running on agent" in (_task(host, admin, task_id)["reason"] or ""),
               "the task runs on the agent")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _log(host: RunningHost, task_id: str) -> str:
    found = rows(host.database_url, "SELECT text FROM task_log_lines WHERE task_id = %s"
                 " ORDER BY seq", task_id)
    return "\n".join(r["text"] for r in found)


def test_cancel_ends_only_when_the_agent_stopped_the_job_and_says_who(
        fast_host: RunningHost, agents: AgentFactory, tmp_path: Path) -> None:
    pool = _pool()
    agents(fast_host, pool)
    marker = tmp_path / "pid"
    admin, project = _script(fast_host, pool, f"import os, time; open({str(marker)!r}, 'w')"
                             ".write(str(os.getpid())); time.sleep(60)")
    task_id = _run(fast_host, admin, project)
    _running_on_agent(fast_host, admin, task_id)
    pid = int(wait_until(lambda: marker.exists() and marker.read_text(), "script started"))
    assert admin.post(fast_host.url(f"/api/tasks/{task_id}/cancel")).status_code == 202
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "cancelled" and task["reason"] == "cancelled by alice@example.com"
    assert "the agent stopped the job" in task["error"], task
    assert not _alive(pid)  # terminal only once the script is really gone


def test_a_silent_agent_s_cancelled_task_holds_the_environment_until_the_lease_is_reclaimed(
        fast_host: RunningHost, agents: AgentFactory, tmp_path: Path) -> None:
    pool = _pool()
    agent = agents(fast_host, pool)
    marker = tmp_path / "pid"
    # the first run holds on; the next one (the second task) ends at once
    admin, project = _script(fast_host, pool, f"import os, time\nif not os.path.exists("
                             f"{str(marker)!r}):\n open({str(marker)!r}, 'w').write("
                             "str(os.getpid())); time.sleep(60)")
    first = _run(fast_host, admin, project)
    _running_on_agent(fast_host, admin, first)
    pid = int(wait_until(lambda: marker.exists() and marker.read_text(), "script started"))
    agent.proc.send_signal(signal.SIGSTOP)  # silent: cannot hear the cancel
    try:
        assert admin.post(fast_host.url(f"/api/tasks/{first}/cancel")).status_code == 202
        second = _run(fast_host, admin, project)
        # barrier: the orchestration has taken in the cancel and now waits for the job,
        # which may still be running within its lease: the task does not end yet
        wait_until(lambda: orchestration_received(fast_host, first, "cancel"),
                   "the orchestration to take in the cancel")
        assert _task(fast_host, admin, first)["status"] not in TERMINAL
        assert _task(fast_host, admin, second)["status"] != "running"
        wait_past(lease_of(fast_host, first), "the silent agent's lease to run out")
        fire(fast_host, "agent_lease_reaper")
        done = settle(fast_host, [first])[first]
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    assert done["status"] == "cancelled" and done["reason"] == "cancelled by alice@example.com"
    assert "its lease was reclaimed" in done["error"], done
    # resumed, the agent learns the job is gone and kills it (it froze it meanwhile)
    wait_until(lambda: not _alive(pid), "the orphaned script stopped", timeout=15)
    assert settle(fast_host, [second])[second]["status"] == "succeeded"
    assert job_claims(fast_host.database_url, [first]) == {first: 1}


def test_a_job_that_succeeded_after_cancel_was_requested_is_recorded_as_succeeded(
        fast_host: RunningHost) -> None:
    admin = fast_host.session("alice", ("admin",))
    pool = _pool()
    assert admin.post(fast_host.url("/api/pools"), json={"name": pool}).status_code == 201
    token = admin.post(fast_host.url(f"/api/pools/{pool}/registration-tokens"),
                       json={}).json()["token"]
    reg = requests.post(fast_host.url("/api/agent/register"), timeout=30,
                        json={"token": token, "name": "hand", "labels": ["linux"]}).json()
    key = {"Authorization": f"Bearer {reg['key']}"}
    _admin, project = _script(fast_host, pool, "print('deploying')")
    task_id = _run(fast_host, admin, project)
    job = wait_until(lambda: (r := requests.get(fast_host.url("/api/agent/jobs/next?wait=1"),
                                           headers=key, timeout=30)).status_code == 200
                and r.json(), "the job is handed out")
    assert admin.post(fast_host.url(f"/api/tasks/{task_id}/cancel")).status_code == 202
    # barrier: the orchestration took in the cancel and waits for the job, not ending the task
    wait_until(lambda: orchestration_received(fast_host, task_id, "cancel"),
               "the orchestration to take in the cancel")
    assert _task(fast_host, admin, task_id)["status"] not in TERMINAL
    # the job finished before the agent heard of the cancel
    r = requests.post(fast_host.url(f"/api/agent/jobs/{job['id']}/result"), headers=key,
                      json={"status": "succeeded", "result": {"exitCode": 0}}, timeout=30)
    assert r.status_code == 200, r.text
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "succeeded", task
    assert "succeeded after cancel was requested by alice@example.com" in task["reason"]


def test_a_child_left_holding_the_output_neither_hangs_the_job_nor_outlives_it(
        fast_host: RunningHost, agents: AgentFactory, tmp_path: Path) -> None:
    pool = _pool()
    agents(fast_host, pool)
    child_pid = tmp_path / "child"
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(300)']); "
            f"open({str(child_pid)!r}, 'w').write(str(p.pid)); print('left a child')")
    admin, project = _script(fast_host, pool, code)
    started = time.monotonic()
    task_id = _run(fast_host, admin, project)
    task = settle(fast_host, [task_id], timeout=30)[task_id]
    assert task["status"] == "succeeded", task
    assert time.monotonic() - started < 20  # not the child's 300 s
    wait_until(lambda: not _alive(int(child_pid.read_text())), "the child was killed", 10)


def test_every_line_of_a_big_log_is_stored(fast_host: RunningHost,
                                           agents: AgentFactory) -> None:
    pool = _pool()
    agents(fast_host, pool)
    code = "for i in range(3000): print(f'line {i:04d} ' + 'x' * 1000)"
    admin, project = _script(fast_host, pool, code)
    task_id = _run(fast_host, admin, project)
    task = settle(fast_host, [task_id], timeout=60)[task_id]
    assert task["status"] == "succeeded", task
    found = rows(fast_host.database_url, "SELECT count(*) AS n FROM task_log_lines"
                 " WHERE task_id = %s AND text LIKE 'line %%'", task_id)
    assert found[0]["n"] == 3000
    assert "could not be stored" not in _log(fast_host, task_id)


def test_an_agent_that_cannot_renew_its_lease_freezes_the_job_then_kills_it(
        fast_host: RunningHost, agents: AgentFactory, tmp_path: Path) -> None:
    from agent import config as config_file

    proxy = TcpProxy("127.0.0.1", int(fast_host.base_url.rsplit(":", 1)[1]))
    pool = _pool()
    registered = agents(fast_host, pool)
    registered.stop()  # run it again, talking through the proxy
    config = registered.state / "agent-config.json"
    cfg = config_file.load(config)
    cfg.url = proxy.url
    config_file.save(cfg, config)
    with (registered.state / "agent.log").open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "agent.main", "run", "--config",
                                 str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        marker = tmp_path / "pid"
        admin, project = _script(fast_host, pool, f"import os, time; open({str(marker)!r},"
                                 " 'w').write(str(os.getpid())); time.sleep(60)")
        task_id = _run(fast_host, admin, project)
        pid = int(wait_until(lambda: marker.exists() and marker.read_text(), "script started"))
        proxy.cut()
        cut_at = time.monotonic()
        wait_until(lambda: _state(pid) == "T", "the job is frozen", timeout=10)
        assert time.monotonic() - cut_at < 2.0 + 2.0  # the lease, plus a heartbeat's slack
        wait_past(lease_of(fast_host, task_id), "the cut-off agent's lease to run out")
        fire(fast_host, "agent_lease_reaper")
        task = settle(fast_host, [task_id])[task_id]
        assert task["status"] == "failed" and "agent lost" in task["error"], task
        assert _state(pid) == "T"  # still frozen: nothing ran after the lease was gone
        proxy.restore()
        wait_until(lambda: not _alive(pid), "the job is killed once the agent hears", 15)
    finally:
        proc.terminate()
        proc.wait(20)
        proxy.close()


def test_a_control_plane_paused_past_the_lease_does_not_fail_a_healthy_job(
        fast_host: RunningHost, agents: AgentFactory) -> None:
    pool = _pool()
    agents(fast_host, pool)
    admin, project = _script(fast_host, pool, "import time; time.sleep(3); print('done')")
    task_id = _run(fast_host, admin, project)
    _running_on_agent(fast_host, admin, task_id)
    lease = lease_of(fast_host, task_id)
    fast_host.proc.send_signal(signal.SIGSTOP)
    try:
        # the pause is the fault: it lasts past the lease and the reaper's own 5 s period
        wait_past(lease + timedelta(seconds=5.5), "the pause to outlast lease and reaper")
    finally:
        fast_host.proc.send_signal(signal.SIGCONT)
    task = settle(fast_host, [task_id], timeout=60)[task_id]
    assert task["status"] == "succeeded", (task, _log(fast_host, task_id))
    assert job_claims(fast_host.database_url, [task_id]) == {task_id: 1}


def test_a_nul_in_a_failing_script_s_error_reaches_the_task(
        fast_host: RunningHost, agents: AgentFactory) -> None:
    pool = _pool()
    agents(fast_host, pool)
    code = "import sys; sys.stdout.write('bad \\x00 byte\\n'); sys.exit(3)"
    admin, project = _script(fast_host, pool, code)
    started = time.monotonic()
    task_id = _run(fast_host, admin, project)
    task = settle(fast_host, [task_id])[task_id]
    assert task["status"] == "failed", task
    assert "exited with code 3" in task["error"] and "bad \\x00 byte" in task["error"]
    assert time.monotonic() - started < 20
