"""kill -9 of the local host at seeded random points while operations are submitted and
run (noop deploys and agent-run scripts): after each restart every accepted task ends
terminal with a reason, and no non-idempotent step ran twice (one terminal transition per
task, at most one agent claim per script job).

The 20 runs chain on one database: the host restarted after run ``n`` is the host that
run ``n + 1`` kills, so the suite pays for 21 host starts, not 40. ``FAULT_RUNS`` (env)
changes the count (``./bench.sh soak`` runs more, longer).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.faults._harness import (
    FAST,
    ScriptedAgent,
    job_claims,
    kill,
    make_env,
    restart_host,
    settle,
    terminal_transitions,
)

RUNS = int(os.environ.get("FAULT_RUNS", "20"))


@pytest.fixture
def database() -> Iterator[str]:
    admin, name = create_throwaway_database("cloudops_faults")
    yield with_database(admin, name)
    drop_database(admin, name)


class Submitter:
    """Submits a run's operations from a thread so the kill can land mid-request; only
    tasks that got their 202 count as accepted."""

    def __init__(self, host: RunningHost, plan: list[tuple[str, dict[str, Any]]],
                 pause: float) -> None:
        self.host, self.plan, self.pause = host, plan, pause
        self.accepted: list[tuple[str, str]] = []  # (task id, kind)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        admin = self.host.session("alice", ("admin",))
        for path, body in self.plan:
            try:
                r = admin.post(self.host.url(path), json=body, timeout=10)
            except requests.RequestException:
                return  # the host died under us: the rest was never sent
            if r.status_code == 202:
                self.accepted.append((r.json()["id"], "script" if "/scripts/" in path
                                      else "deploy"))
            time.sleep(self.pause)


def _setup(host: RunningHost) -> tuple[ScriptedAgent, list[str], str]:
    admin = host.session("alice", ("admin",))
    agent = ScriptedAgent(host, admin, hold=0.2)
    noop = [make_env(admin, host)[0] for _ in range(2)]
    scripted, _ = make_env(admin, host, {"type": "agent", "pool": agent.pool,
                                         "labels": ["linux"]})
    r = admin.post(host.url(f"/api/projects/{scripted}/scripts"),
                   json={"name": "touch", "argv": [sys.executable, "-c", "pass"],
                         "parameters": [], "timeoutSeconds": 30})
    assert r.status_code == 201, r.text
    return agent.start(), noop, scripted


def _plan(rng: random.Random, noop: list[str], scripted: str, run: int
          ) -> list[tuple[str, dict[str, Any]]]:
    plan: list[tuple[str, dict[str, Any]]] = []
    for i in range(rng.randint(3, 5)):
        if rng.random() < 0.4:
            plan.append((f"/api/projects/{scripted}/environments/dev/scripts/touch/runs",
                         {"parameters": {}}))
        else:
            plan.append((f"/api/projects/{rng.choice(noop)}/environments/dev/deployments",
                         {"version": f"{run}.{i}"}))
    return plan


def test_host_killed_at_random_points_loses_no_task_and_repeats_no_step(
        database: str, tmp_path: Path) -> None:
    host = start_host(database, tmp_path, env=FAST)
    agent: ScriptedAgent | None = None
    try:
        agent, noop, scripted = _setup(host)
        for run in range(RUNS):
            rng = random.Random(1300 + run)
            submitter = Submitter(host, _plan(rng, noop, scripted, run),
                                  pause=rng.uniform(0.0, 0.15))
            submitter.thread.start()
            time.sleep(rng.uniform(0.0, 1.2))  # the kill point
            kill(host)
            submitter.thread.join(timeout=15)
            host = restart_host(host)
            agent.base_url = host.base_url
            ids = [task_id for task_id, _ in submitter.accepted]
            tasks = settle(host, ids)
            for task in tasks.values():
                assert task["reason"], (run, task)
            assert set(terminal_transitions(database, ids).values()) <= {1}, run
            scripts = [task_id for task_id, kind in submitter.accepted if kind == "script"]
            assert all(n <= 1 for n in job_claims(database, scripts).values()), run
    finally:
        if agent is not None:
            agent.stop()
        stop_host(host)
