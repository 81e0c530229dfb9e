"""FUNCTIONS_WORKER_PROCESS_COUNT: the app's functions run in worker processes.

The host (in this test process) starts two workers for ``apps/workers``; the functions
record, with their pid, what they ran in a file the tests read.
"""

from __future__ import annotations

import json
import os
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localhost.durable import DurableExtension
from localhost.servicebus.broker import BrokeredMessage
from localhost.workers import WorkerPool, worker_count
from tests.localhost.conftest import RunningHost, start_host
from tests.waiting import wait_until

pytestmark = pytest.mark.localhost


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-records")


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory, records: Path) -> Iterator[RunningHost]:
    env = {"WORKERS_RECORD_DIR": str(records)}
    running = start_host("workers", tmp_path_factory.mktemp("workers"), env,
                         worker_processes=2, extensions=[DurableExtension()])
    yield running
    running.stop()
    os.environ.pop("WORKERS_RECORD_DIR", None)


def read_records(records: Path, kind: str) -> list[dict[str, Any]]:
    path = records / "records.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def pool(running: RunningHost) -> WorkerPool:
    assert running.host.workers is not None
    return running.host.workers


def send(running: RunningHost, session: str, message_id: str, body: dict[str, Any]) -> None:
    bus = running.host.extension("servicebus")
    message = BrokeredMessage(body=json.dumps(body).encode(), message_id=message_id,
                              session_id=session, content_type="application/json")
    running.run(lambda: bus.send("ordered", message))  # type: ignore[union-attr]


def blocked_pid(records: Path, key: str) -> int:
    marker = records / f"blocked-{key}"
    wait_until(lambda: marker.exists() and marker.read_text() != "",
               "the worker to write its pid marker")
    return int(marker.read_text())


def test_http_functions_run_in_a_worker_process_not_the_host(pooled: RunningHost) -> None:
    workers = set(pool(pooled).pids)
    assert len(workers) == 2
    pids = set()
    for i in range(6):
        reply = pooled.get(f"/api/pid?q={i}")
        assert reply.status == 200, reply.body
        assert reply.headers["x-worker"] == "yes"
        answer = reply.json()
        assert answer["q"] == str(i)
        assert answer["route"].endswith(f"/api/pid?q={i}")
        pids.add(answer["pid"])
    assert os.getpid() not in pids
    assert pids <= workers


def test_an_exception_in_a_worker_is_a_500_for_the_caller(pooled: RunningHost) -> None:
    reply = pooled.get("/api/fail")
    assert reply.status == 500
    assert b"failed in the worker" not in reply.body


def test_a_result_that_cannot_cross_back_is_a_500_and_the_worker_goes_on(
        pooled: RunningHost) -> None:
    pids = pool(pooled).pids
    assert pooled.get("/api/unsendable").status == 500
    assert pooled.get("/api/pid").status == 200
    assert pool(pooled).pids == pids  # nobody crashed


def test_session_order_holds_across_worker_processes(pooled: RunningHost,
                                                     records: Path) -> None:
    sessions = [f"order-{i}" for i in range(12)]
    for seq in range(15):
        for session in sessions:
            send(pooled, session, f"{session}-{seq}", {"seq": seq})

    def mine() -> list[dict[str, Any]]:
        return [r for r in read_records(records, "message")
                if str(r["session"]).startswith("order-")]

    wait_until(lambda: len(mine()) == len(sessions) * 15, "every session's messages handled",
               timeout=60)
    by_session: dict[str, list[int]] = defaultdict(list)
    for r in mine():
        by_session[r["session"]].append(r["seq"])
    assert all(seqs == list(range(15)) for seqs in by_session.values()), by_session
    assert {r["pid"] for r in mine()} == set(pool(pooled).pids)  # both workers took part


def test_a_killed_worker_s_message_is_redelivered_and_the_worker_replaced(
        pooled: RunningHost, records: Path) -> None:
    before = set(pool(pooled).pids)
    started = pool(pooled).started
    send(pooled, "killed", "killed-1", {"seq": 1, "block": True})
    send(pooled, "killed", "killed-2", {"seq": 2})
    victim = blocked_pid(records, "msg-killed-1")
    assert victim in before
    os.kill(victim, signal.SIGKILL)

    def done() -> list[dict[str, Any]]:
        return [r for r in read_records(records, "message") if r["session"] == "killed"]

    wait_until(lambda: len(done()) == 2, "both invocations finished", timeout=60)
    first, second = done()
    assert (first["seq"], second["seq"]) == (1, 2)  # the session's order survived the kill
    assert first["delivery_count"] == 2 and first["pid"] != victim
    wait_until(lambda: len(pool(pooled).pids) == 2 and pool(pooled).started > started,
               "a replacement worker started")
    assert victim not in pool(pooled).pids
    assert pool(pooled).crashed >= 1


def test_a_killed_worker_s_activity_is_retried_and_the_orchestration_completes(
        pooled: RunningHost, records: Path) -> None:
    reply = pooled.post("/api/start/fragile_flow",
                        body=json.dumps({"key": "a1", "block": True}),
                        headers={"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    started = reply.json()
    assert started["pid"] != os.getpid()  # the Durable client ran in a worker, over HTTP
    victim = blocked_pid(records, "activity-a1")
    os.kill(victim, signal.SIGKILL)

    def status() -> dict[str, Any]:
        return pooled.get(
            f"/runtime/webhooks/durabletask/instances/{started['id']}").json()

    wait_until(lambda: status()["runtimeStatus"] in ("Completed", "Failed"),
               "the orchestration ended", timeout=60)
    final = status()
    assert final["runtimeStatus"] == "Completed", final
    assert final["output"]["result"]["pid"] != victim
    assert final["output"]["orchestrator_pid"] == os.getpid()  # episodes stay in the host
    assert [r["key"] for r in read_records(records, "activity")].count("a1") == 1


def test_stopping_the_host_stops_every_worker_process(tmp_path: Path, records: Path) -> None:
    running = start_host("workers", tmp_path, {"WORKERS_RECORD_DIR": str(records)},
                         worker_processes=3)
    workers = pool(running)
    pids = workers.pids
    assert len(pids) == 3
    assert running.get("/api/pid").json()["pid"] in pids
    running.stop()
    for pid in pids:  # exited and reaped: no such process any more
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_one_worker_process_is_the_default_and_runs_in_the_host(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FUNCTIONS_WORKER_PROCESS_COUNT", raising=False)
    assert worker_count(app_dir=tmp_path) == 1
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"FUNCTIONS_WORKER_PROCESS_COUNT": "3"}}))
    assert worker_count(app_dir=tmp_path) == 3
    assert worker_count({"FUNCTIONS_WORKER_PROCESS_COUNT": "2"}, tmp_path) == 2
    for bad in ("0", "11", "two"):
        with pytest.raises(ValueError, match="FUNCTIONS_WORKER_PROCESS_COUNT"):
            worker_count({"FUNCTIONS_WORKER_PROCESS_COUNT": bad})


HOST_THAT_DIES = """
import asyncio, os, sys
from pathlib import Path
from localhost.workers import WorkerPool

async def main():
    pool = WorkerPool(Path(sys.argv[1]), 2)
    await pool.start()
    print(" ".join(map(str, pool.pids)), flush=True)
    os._exit(9)  # the host dies without stopping its workers

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_workers_exit_by_themselves_when_their_host_dies() -> None:
    import subprocess
    import sys

    from tests.localhost.conftest import APPS

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", HOST_THAT_DIES, str(APPS / "workers")],
                            cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2
    wait_until(lambda: all(gone(pid) for pid in pids), "every worker process exited", timeout=30)
