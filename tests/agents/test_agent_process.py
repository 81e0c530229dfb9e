"""The agent program itself: it rotates its key before expiry without downtime, finishes
its job on SIGTERM, reports failures with the log tail, and never logs its key."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent import config as config_file
from agent.local import register_local_agent
from tests.agents.conftest import AgentProcess, ControlPlane, start_agent, stop_agent
from tests.waiting import wait_until


def test_agent_rotates_its_key_before_expiry_and_keeps_working(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    path = register_local_agent(plane.base_url, plane.admin, pool=pool, labels=["linux"],
                                connections={}, state_dir=tmp_path, name="rotator",
                                allowed_executables=[sys.executable])
    cfg = config_file.load(path)
    old_key = cfg.key
    # pretend the key was issued long ago: less than a quarter of its life is left
    cfg.key_issued_at = (datetime.now(UTC) - timedelta(days=300)).isoformat()
    config_file.save(cfg, path)
    log_path = tmp_path / "agent.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "agent.main", "run", "--config",
                                 str(path)], stdout=log_file, stderr=subprocess.STDOUT)
    agent = AgentProcess(proc, path, log_path)
    try:
        wait_until(lambda: config_file.load(path).key != old_key, "key rotated")
        new_key = config_file.load(path).key
        assert (path.stat().st_mode & 0o777) == 0o600
        job = plane.dispatch(plane.task(), pool=pool,
                             payload={"argv": [sys.executable, "-c", "print('after')"]})
        done = wait_until(lambda: (j := plane.job(job)).status != "pending"
                          and j.status != "leased" and j, "job after rotation")
        assert done.status == "succeeded"
        assert plane.request("POST", "/api/agent/heartbeat", json={},
                             headers=plane.as_agent(new_key)).status_code == 200
        output = agent.output()
        assert "rotated the agent key" in output
        assert old_key not in output and new_key not in output
    finally:
        stop_agent(agent)


def test_sigterm_lets_the_running_job_finish(control_plane: ControlPlane,
                                             tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[])
    try:
        started = tmp_path / "started"
        code = f"import time; open({str(started)!r}, 'w').close(); time.sleep(1.5);" \
               " print('finished cleanly')"
        task = plane.task("script_run")
        job = plane.dispatch(task, pool=pool, payload={"argv": [sys.executable, "-c", code]})
        wait_until(started.exists, "job started")
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(30) == 0
        row = plane.job(job)
        assert row.status == "succeeded"
        wait_until(lambda: "finished cleanly" in plane.log_text(task), "log shipped")
    finally:
        stop_agent(agent)


def test_failed_script_reports_exit_code_and_log_tail_through_the_api(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[])
    try:
        code = "import sys\nfor i in range(30): print(f'step {i}')\nsys.exit(7)"
        task = plane.task("script_run")
        job = plane.dispatch(task, pool=pool, payload={
            "script": "migrate", "argv": [sys.executable, "-c", code], "timeoutSeconds": 60})
        row = wait_until(lambda: (j := plane.job(job)).status in ("failed", "succeeded") and j,
                         "job failed")
        assert row.status == "failed"
        assert row.error.startswith("migrate exited with code 7; last lines:")
        assert row.error.rstrip().endswith("step 29")
        wait_until(lambda: "step 29" in plane.log_text(task), "log lines shipped")
        key = json.loads(agent.config.read_text())["key"]
        assert key not in agent.output()
        assert '"level": "info"' in agent.output()  # structured JSON lines
    finally:
        stop_agent(agent)


def test_sigterm_after_the_grace_period_hands_the_job_back(control_plane: ControlPlane,
                                                           tmp_path: Path) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = start_agent(plane, tmp_path, pool=pool, labels=[])
    try:
        cfg = config_file.load(agent.config)
        cfg.shutdown_grace_seconds = 0.5
        config_file.save(cfg, agent.config)
        stop_agent(agent)  # restart with the short grace period
        with agent.log.open("ab") as log_file:
            agent.proc = subprocess.Popen([sys.executable, "-m", "agent.main", "run",
                                           "--config", str(agent.config)],
                                          stdout=log_file, stderr=subprocess.STDOUT)
        started = tmp_path / "started"
        code = f"import time; open({str(started)!r}, 'w').close(); time.sleep(120)"
        task = plane.task("script_run")
        job = plane.dispatch(task, pool=pool, payload={"argv": [sys.executable, "-c", code]})
        wait_until(started.exists, "job started")
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(30) == 0
        row = plane.job(job)
        assert row.status == "failed"  # a script is not safe to repeat elsewhere
        assert row.error == f"agent {cfg.name} shut down before the script job finished"
    finally:
        stop_agent(agent)
