"""The local host's own agent is supervised: killed, it is started again, the log says
so, and the restarted agent takes the next job."""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

from tests.agents.conftest import ControlPlane
from tests.waiting import wait_until


def test_a_killed_local_agent_is_restarted_saying_so_and_takes_the_next_job(
        control_plane: ControlPlane, tmp_path: Path) -> None:
    from agent.local import SupervisedAgent, start_local_agent

    plane = control_plane
    pool = plane.pool()
    name = f"agent-{secrets.token_hex(3)}"
    agent = start_local_agent(plane.base_url, plane.admin, pool, [], {}, tmp_path / name,
                              name=name, allowed_executables=[sys.executable])
    assert isinstance(agent, SupervisedAgent)
    try:
        first_pid = agent.pid
        os.kill(first_pid, signal.SIGKILL)
        log = tmp_path / name / "agent.log"
        wait_until(lambda: f"local agent (pid {first_pid}) exited with code -9; restarting"
                   in log.read_text(errors="replace"), "the restart is announced")
        wait_until(lambda: agent.pid != first_pid and "local agent restarted" in log.read_text(
            errors="replace"), "a new agent process")
        assert agent.poll() is None
        job = plane.dispatch(plane.task(), pool=pool, payload={
            "script": "hello", "argv": [sys.executable, "-c", "print('hi')"],
            "timeoutSeconds": 30})
        row = wait_until(lambda: (j := plane.job(job)).status not in ("pending", "leased") and j,
                         "the restarted agent ran the job")
        assert row.status == "succeeded", row
    finally:
        agent.terminate()
        agent.wait(30)
    assert agent.poll() is not None  # a stop that was asked for is not undone
