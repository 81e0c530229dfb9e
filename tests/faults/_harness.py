"""Helpers for the fault suite: kill and restart the local host, fire its timers, a
test-driven agent that survives host restarts, a TCP proxy that cuts Postgres, and the
invariant checks every fault test ends with (terminal with a reason, nothing ran twice).
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg.rows import dict_row

from localhost.durable.history import EVENT_RAISED
from tests.conftest import RunningHost, start_host
from tests.waiting import WaitTimeout, wait_until

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
# Short windows so a fault shows within seconds: re-send lost messages after 1 s, agents
# heartbeat every 0.5 s and lose their lease 2 s after the last heartbeat.
FAST = {"CLOUDOPS_RESEND_AFTER_SECONDS": "1", "CLOUDOPS_AGENT_HEARTBEAT_SECONDS": "0.5",
        "CLOUDOPS_AGENT_LEASE_SECONDS": "2", "CLOUDOPS_AGENT_MAX_WAIT_SECONDS": "1"}


def kill(host: RunningHost) -> None:
    """kill -9: no shutdown hook runs, in-memory queues are lost."""
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait()
    if host.drain is not None:
        host.drain.join(timeout=5)


def restart_host(host: RunningHost, env: dict[str, str] | None = None) -> RunningHost:
    return start_host(host.database_url, host.home, env={**FAST, **(env or {})})


def fire(host: RunningHost, function: str) -> None:
    """Run a timer function now through the host's admin API (master key)."""
    r = requests.post(host.url(f"/admin/functions/{function}"), json={"input": ""},
                      headers={"x-functions-key": host.master_key}, timeout=30)
    assert r.status_code in (200, 202), r.text


def make_env(admin: Any, host: RunningHost, target: dict[str, Any] | None = None
             ) -> tuple[str, str]:
    project = f"f-{uuid.uuid4().hex[:8]}"
    r = admin.post(host.url("/api/projects"), json={"slug": project, "name": project})
    assert r.status_code == 201, r.text
    r = admin.post(host.url(f"/api/projects/{project}/environments"),
                   json={"slug": "dev", "name": "Dev", "target": target or {"type": "noop"}})
    assert r.status_code == 201, r.text
    return project, "dev"


def settle(host: RunningHost, task_ids: list[str], timeout: float = 40,
           sweep_every: float = 2.0) -> dict[str, dict[str, Any]]:
    """Wait until every task is terminal, firing the sweeper now and then (it re-sends
    messages a kill lost); the tasks' last JSON by id. Fails naming the stuck ones."""
    admin = host.session("alice", ("admin",))
    last_sweep = [time.monotonic()]  # the first sweep after ``sweep_every``
    tasks: dict[str, dict[str, Any]] = {}

    def all_ended() -> dict[str, dict[str, Any]] | None:
        for task_id in task_ids:
            if tasks.get(task_id, {}).get("status") not in TERMINAL:
                r = admin.get(host.url(f"/api/tasks/{task_id}"), timeout=10)
                assert r.status_code == 200, r.text
                tasks[task_id] = r.json()
        if all(t["status"] in TERMINAL for t in tasks.values()):
            return tasks
        if time.monotonic() - last_sweep[0] > sweep_every:
            fire(host, "sweep_tasks")
            last_sweep[0] = time.monotonic()
        return None

    try:
        # ``is not None``: a run whose kill came before any 202 settles on an empty dict
        wait_until(lambda: all_ended() is not None, "every task to end", timeout, interval=0.1)
        return tasks
    except WaitTimeout:
        pass
    stuck = {i: (t["status"], t["reason"]) for i, t in tasks.items()
             if t["status"] not in TERMINAL}
    raise AssertionError(f"tasks not terminal after {timeout} s: {stuck}; their "
                         f"orchestrations: {_durable_state(host, list(stuck))}")


def _durable_state(host: RunningHost, ids: list[str]) -> list[dict[str, Any]]:
    """What the Durable instance store says of stuck tasks (for the failure message)."""
    try:
        return rows(host.database_url,
                    "SELECT i.instance_id, i.status, (SELECT count(*) FROM durable_history h"
                    " WHERE h.instance_id = i.instance_id) AS events, (SELECT count(*) FROM"
                    " durable_inbox b WHERE b.instance_id = i.instance_id) AS inbox,"
                    " (SELECT left(event, 300) FROM durable_history h WHERE h.instance_id ="
                    " i.instance_id ORDER BY seq DESC LIMIT 1) AS last FROM"
                    " durable_instances i WHERE instance_id = ANY(%s)", ids)
    except psycopg.Error as exc:
        return [{"error": repr(exc)}]


def rows(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


def terminal_transitions(database_url: str, task_ids: list[str]) -> dict[str, int]:
    """How many terminal activity rows (task.succeeded/failed/...) each task has: a
    step that ran twice would show as two."""
    found = rows(database_url,
                 "SELECT task_id::text AS id, count(*) AS n FROM activity_log WHERE task_id ="
                 " ANY(%s::uuid[]) AND action IN ('task.succeeded', 'task.failed',"
                 " 'task.cancelled', 'task.timed_out') GROUP BY task_id", task_ids)
    return {r["id"]: int(r["n"]) for r in found}


def lease_of(host: RunningHost, task_id: str) -> datetime:
    """When the lease of the task's (one) job runs out, as the control plane wrote it."""
    found = rows(host.database_url, "SELECT lease_expires_at FROM jobs WHERE task_id = %s",
                 task_id)
    assert len(found) == 1 and found[0]["lease_expires_at"] is not None, found
    return found[0]["lease_expires_at"]


def wait_past(moment: datetime, what: str, timeout: float = 30) -> None:
    """Until the wall clock (the one the control plane writes leases in) passes ``moment``."""
    wait_until(lambda: datetime.now(UTC) > moment, what, timeout)


def orchestration_received(host: RunningHost, task_id: str, event: str) -> bool:
    """Whether the task's orchestration has taken in the external event ``event`` (it is in
    the instance's history: the orchestrator ran the step that consumed it)."""
    found = rows(host.database_url, "SELECT event FROM durable_history WHERE instance_id = %s",
                 task_id)
    return any((e := json.loads(r["event"])).get("EventType") == EVENT_RAISED
               and e.get("Name") == event for r in found)


def job_claims(database_url: str, task_ids: list[str]) -> dict[str, int]:
    """Agent claims per task: the sum of every job's lease count."""
    found = rows(database_url, "SELECT task_id::text AS id, sum(attempts) AS n FROM jobs"
                 " WHERE task_id = ANY(%s::uuid[]) GROUP BY task_id", task_ids)
    return {r["id"]: int(r["n"]) for r in found}


class ScriptedAgent:
    """The agent protocol on a thread: takes jobs, holds each ``hold`` seconds while
    heartbeating, reports success. Follows the host across restarts (``base_url`` is
    swapped) and shrugs off connection errors while the host is down."""

    def __init__(self, host: RunningHost, admin: Any, *, hold: float = 0.0,
                 capacity: int = 4) -> None:
        self.base_url = host.base_url
        self.pool = f"pool-{uuid.uuid4().hex[:6]}"
        assert admin.post(host.url("/api/pools"), json={"name": self.pool}).status_code == 201
        token = admin.post(host.url(f"/api/pools/{self.pool}/registration-tokens"),
                           json={}).json()["token"]
        r = requests.post(host.url("/api/agent/register"),
                          json={"token": token, "name": "scripted", "labels": ["linux"],
                                "capacity": capacity}, timeout=30)
        assert r.status_code == 201, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['key']}"}
        self.hold = hold
        self.completed: list[str] = []
        self._running: set[str] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, daemon=True)
                         for _ in range(capacity)]
        self._threads.append(threading.Thread(target=self._beat, daemon=True))

    def start(self) -> ScriptedAgent:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response | None:
        try:
            return requests.request(method, self.base_url + path, headers=self.headers,
                                    timeout=10, **kw)
        except requests.RequestException:
            self._stop.wait(0.2)  # the host is down (killed); try again on the next round
            return None

    def _beat(self) -> None:
        while not self._stop.wait(0.3):
            self._call("POST", "/api/agent/heartbeat", json={"running": sorted(self._running)})

    def _poll(self) -> None:
        while not self._stop.is_set():
            r = self._call("GET", "/api/agent/jobs/next?wait=1")
            if r is None or r.status_code != 200:
                if r is not None and r.status_code >= 500:
                    self._stop.wait(0.2)  # the host is restarting: back off, stop at once
                continue
            job = r.json()
            self._running.add(job["id"])
            try:
                self._stop.wait(self.hold)  # the job's work: the agent holds it this long
                while not self._stop.is_set():
                    done = self._call("POST", f"/api/agent/jobs/{job['id']}/result",
                                      json={"status": "succeeded", "result": {"ok": True}})
                    if done is not None and done.status_code < 500:
                        self.completed.append(job["id"])
                        break
            finally:
                self._running.discard(job["id"])


def home_dir(tmp_path: Path, name: str = "home") -> Path:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return path
