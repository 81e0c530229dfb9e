"""Agents that vanish: kill -9 mid-job ends the job "agent lost" within the lease
window (or hands a retry-safe job to another agent), never two agents on one job; silent
agents are announced offline."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.agents.conftest import (
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    ControlPlane,
    start_agent,
    stop_agent,
)
from tests.waiting import wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_kill_9_mid_job_ends_it_agent_lost_and_kills_its_children(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=["linux"])
    try:
        pid_file = tmp_path / "script.pid"
        code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid()));" \
               " time.sleep(120)"
        task = plane.task("script_run")
        job = plane.dispatch(task, pool=pool, payload={
            "script": "slow", "argv": [sys.executable, "-c", code], "timeoutSeconds": 300})
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), "script started")
        script_pid = int(pid_file.read_text())
        assert plane.job(job).status == "leased"
        os.kill(agent.proc.pid, signal.SIGKILL)
        agent.proc.wait(10)
        killed_at = time.monotonic()
        # the lease (2 s here) runs out; the reaper timer (every 5 s) or a fired one ends it
        expires = plane.job(job).lease_expires_at
        wait_until(lambda: datetime.now(UTC) > expires, "the job's lease to run out",
                   timeout=LEASE_SECONDS + 10)
        plane.fire("agent_lease_reaper")
        row = wait_until(lambda: (j := plane.job(job)).status != "leased" and j, "job reaped")
        assert row.status == "lost"
        assert row.error.startswith("agent lost: no heartbeat since")
        assert time.monotonic() - killed_at < LEASE_SECONDS + 10
        assert row.attempts == 1  # a script job is never run a second time
        # the log line is appended right after the reaper's transaction commits
        wait_until(lambda: "lost: no heartbeat since" in plane.log_text(task), "lost logged")
        # the agent's child died with it (parent-death signal), so nothing runs on
        wait_until(lambda: not _alive(script_pid), "script process gone", timeout=10)
    finally:
        stop_agent(agent)


def _poll(plane: ControlPlane, key: str) -> Any:
    return plane.request("GET", "/api/agent/jobs/next?wait=0", headers=plane.as_agent(key))


def test_retry_safe_job_moves_to_another_agent_and_the_lost_one_is_refused(
        control_plane: ControlPlane) -> None:
    from shared.agents.reaper import reap_expired_leases

    plane = control_plane
    pool = plane.pool()
    first, second = plane.register(pool, ["pg"]), plane.register(pool, ["pg"])
    task = plane.task("backup")
    job = plane.dispatch(task, pool=pool, kind="backup", demands=["pg"],
                         payload={"connection": "x", "uploadUrl": "http://x", "artifact": "a"})
    assert _poll(plane, first["key"]).json()["attempt"] == 1
    assert _poll(plane, second["key"]).status_code == 204  # leased: nobody else gets it
    plane.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
              (job,))
    with plane.db.transaction() as conn:
        from datetime import UTC, datetime

        effects = reap_expired_leases(conn, datetime.now(UTC))
    (_task, lines), = effects.logs
    assert "retrying the backup job on another agent (attempt 2 of 3)" in lines[0]
    row = plane.job(job)
    assert row.status == "pending" and row.agent_id is None
    waiting = plane.task_row(task)
    assert waiting.status == "waiting"
    assert waiting.reason == f"agent {first['name']} lost; waiting for another agent"
    taken = _poll(plane, second["key"]).json()
    assert taken["id"] == str(job) and taken["attempt"] == 2
    stale = plane.request("POST", f"/api/agent/jobs/{job}/result", json={"status": "succeeded"},
                          headers=plane.as_agent(first["key"]))
    assert stale.status_code == 404
    beat = plane.request("POST", "/api/agent/heartbeat", json={"running": [str(job)]},
                         headers=plane.as_agent(first["key"]))
    assert beat.json()["abandon"] == [str(job)]
    ok = plane.request("POST", f"/api/agent/jobs/{job}/result",
                       json={"status": "succeeded", "result": {"sizeBytes": 1}},
                       headers=plane.as_agent(second["key"]))
    assert ok.status_code == 200


def test_heartbeats_renew_the_lease(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    before = plane.job(job).lease_expires_at
    claimed = plane.job(job).claimed_at
    wait_until(lambda: datetime.now(UTC) > claimed, "the clock to pass the claim")
    plane.request("POST", "/api/agent/heartbeat", json={"running": [str(job)]},
                  headers=plane.as_agent(agent["key"]))
    assert plane.job(job).lease_expires_at > before


def test_silent_agent_goes_offline_once(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    plane.request("POST", "/api/agent/heartbeat", json={},
                  headers=plane.as_agent(agent["key"]))

    def status() -> str:
        items = plane.request("GET", f"/api/pools/{pool}/agents",
                              headers=plane.admin).json()["items"]
        return str(items[0]["status"])

    assert status() == "online"
    # three heartbeat periods of silence make it offline
    wait_until(lambda: status() == "offline", "the silent agent to show offline",
               timeout=HEARTBEAT_SECONDS * 3 + 10)
    plane.fire("agent_offline_detector")
    wait_until(lambda: not plane.db.fetch_one("SELECT online FROM agents WHERE id = %s",
                                         (agent["agentId"],))["online"], "offline recorded")
    plane.request("POST", "/api/agent/heartbeat", json={},
                  headers=plane.as_agent(agent["key"]))
    assert status() == "online"


def test_released_retry_safe_job_goes_back_to_the_pool(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    leaving, staying = plane.register(pool), plane.register(pool)
    task = plane.task("backup")
    job = plane.dispatch(task, pool=pool, kind="backup",
                         payload={"connection": "x", "uploadUrl": "http://x", "artifact": "a"})
    assert _poll(plane, leaving["key"]).json()["id"] == str(job)
    resp = plane.request("POST", f"/api/agent/jobs/{job}/release",
                         headers=plane.as_agent(leaving["key"]))
    assert resp.status_code == 200 and resp.json()["status"] == "pending"
    assert plane.task_row(task).status == "waiting"
    assert _poll(plane, staying["key"]).json()["attempt"] == 2
