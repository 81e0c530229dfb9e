"""Agent job pickup latency and the cost of idle long-polling agents.

Runs the real local host (``cloudops local``, this repository's app) as a subprocess on
a throwaway database of the configured Postgres (``DATABASE_URL``, else the embedded
server). Then, in one run:

- baseline: a bare Postgres LISTEN/NOTIFY round trip (NOTIFY committed → listener has it);
- idle: N agents (default 500) registered through the API, each holding a long poll
  (``wait=50``) as the real agent does when idle (its held poll is its sign of life, so
  it sends no separate heartbeats; ``--idle-heartbeats`` adds them every interval for
  comparison); the host process's CPU (user+sys from /proc) is measured over a window;
- pickup: with those idle agents connected, one more agent (label ``bench``, which the idle
  ones lack) long-polls; a job demanding ``bench`` is created and committed, and the time
  until the agent's poll returns it is recorded, many times.

Usage: ./bench.sh pickup [--agents 500] [--jobs 300] [--idle-seconds 30]
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
import requests  # noqa: E402

from shared.db import apply_migrations  # noqa: E402
from tests.agents.conftest import url_form  # noqa: E402
from tests.conftest import create_throwaway_database, drop_database, with_database  # noqa: E402

POLL_SECONDS = 50.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline_notify(url: str, rounds: int) -> list[float]:
    """Bare LISTEN/NOTIFY: committed NOTIFY → the listening connection has it."""
    got = threading.Event()
    received: list[float] = []
    ready = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("LISTEN bench_baseline")
            ready.set()
            for _ in conn.notifies(stop_after=rounds, timeout=60):
                received.append(time.perf_counter())
                got.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(10)
    out: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(rounds):
            got.clear()
            sent = time.perf_counter()
            conn.execute("SELECT pg_notify('bench_baseline', %s)", (str(i),))
            got.wait(5)
            out.append((received[-1] - sent) * 1000)
    thread.join(5)
    return out


class Bench:
    def __init__(self, base: str, admin_key: str, db_url: str) -> None:
        self.base, self.db_url = base, db_url
        self.admin = {"x-functions-key": admin_key}

    def api(self, method: str, path: str, **kw: Any) -> Any:
        resp = requests.request(method, self.base + path, timeout=60, **kw)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
        return resp.json() if resp.content else None

    def register(self, pool: str, count: int, labels: list[str]) -> list[str]:
        token = self.api("POST", f"/api/pools/{pool}/registration-tokens", headers=self.admin,
                         json={"multiUse": True, "maxUses": count})["token"]
        keys = []
        with requests.Session() as s:
            for i in range(count):
                resp = s.post(self.base + "/api/agent/register", timeout=60, json={
                    "token": token, "name": f"{labels[0]}-{i}", "labels": labels})
                keys.append(resp.json()["key"])
        return keys


async def idle_agent(session: aiohttp.ClientSession, base: str, key: str,
                     stop: asyncio.Event, heartbeat: float, stats: dict[str, int]) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    async def beat() -> None:
        await asyncio.sleep(heartbeat * secrets.randbelow(1000) / 1000)  # spread out
        while not stop.is_set():
            async with session.post(base + "/api/agent/heartbeat", json={},
                                    headers=headers) as r:
                stats["heartbeats"] += 1
                await r.read()
            await asyncio.sleep(heartbeat)

    beater = asyncio.create_task(beat() if heartbeat > 0 else asyncio.sleep(0))
    # real agents start at different times: spread the first polls over one poll period
    await asyncio.sleep(POLL_SECONDS * secrets.randbelow(1000) / 1000)
    try:
        while not stop.is_set():
            async with session.get(base + f"/api/agent/jobs/next?wait={POLL_SECONDS:g}",
                                   headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=80)) as r:
                await r.read()
                stats["polls"] += 1
    except (asyncio.CancelledError, aiohttp.ClientError):
        pass
    finally:
        beater.cancel()


def pickup_rounds(bench: Bench, pool: str, key: str, jobs: int) -> list[float]:
    from shared.agents.dispatch import dispatch_job
    from shared.db import Database
    from shared.store import projects, tasks

    db = Database(bench.db_url, max_size=2).open()
    with db.transaction() as conn:
        project = projects.create_project(conn, slug=f"b-{secrets.token_hex(3)}", name="b",
                                          actor="bench")
        env = projects.create_environment(conn, project_id=project.id, slug="dev", name="dev",
                                          actor="bench", target={"type": "agent", "pool": pool})
    headers = {"Authorization": f"Bearer {key}"}
    session = requests.Session()
    got: list[tuple[float, dict[str, Any]]] = []
    polling = threading.Event()
    arrived = threading.Event()
    done = threading.Event()

    def agent() -> None:
        while not done.is_set():
            polling.set()
            resp = session.get(bench.base + "/api/agent/jobs/next?wait=50", headers=headers,
                               timeout=80)
            at = time.perf_counter()
            if resp.status_code == 200:
                job = resp.json()
                got.append((at, job))
                arrived.set()
                session.post(f"{bench.base}/api/agent/jobs/{job['id']}/result",
                             headers=headers, json={"status": "succeeded"}, timeout=30)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    latencies: list[float] = []
    for _ in range(jobs):
        polling.wait(10)
        time.sleep(0.02)  # the agent's next poll is held by now
        polling.clear()
        arrived.clear()
        before = len(got)
        with db.transaction() as conn:
            task, _ = tasks.create_task(conn, project_id=project.id, environment_id=env.id,
                                        operation="noop", parameters={}, requested_by="bench")
            from datetime import UTC, datetime

            dispatch_job(conn, task=task, kind="script", payload={}, pool=pool,
                         demands=["bench"], now=datetime.now(UTC))
        committed = time.perf_counter()
        arrived.wait(10)
        if len(got) > before:
            latencies.append((got[-1][0] - committed) * 1000)
    done.set()
    db.close()
    return latencies


async def run_idle(bench: Bench, pool: str, keys: list[str], idle_seconds: float,
                   host_pid: int, heartbeat: float, during: Any) -> dict[str, Any]:
    stop = asyncio.Event()
    stats = {"polls": 0, "heartbeats": 0}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(idle_agent(session, bench.base, k, stop, heartbeat, stats))
                 for k in keys]
        await asyncio.sleep(POLL_SECONDS + 1)  # everyone polling, in steady state
        cpu0, t0 = cpu_seconds(host_pid), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        cpu1, t1 = cpu_seconds(host_pid), time.perf_counter()
        result = await asyncio.to_thread(during)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"cpu_pct": (cpu1 - cpu0) / (t1 - t0) * 100, "stats": stats, "pickup": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--idle-seconds", type=float, default=50.0,
                        help="measurement window (one poll period covers every re-poll)")
    parser.add_argument("--heartbeat", type=float, default=20.0,
                        help="server heartbeat interval (the default policy)")
    parser.add_argument("--idle-heartbeats", action="store_true",
                        help="idle agents also heartbeat every interval")
    args = parser.parse_args()

    admin_srv, name = create_throwaway_database("cloudops_bench")
    db_url = url_form(with_database(admin_srv, name))
    apply_migrations(db_url)
    admin_key = secrets.token_urlsafe(24)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO role_assignments (project_id, principal_type, principal_id,"
                     " role, created_by) VALUES (NULL, 'service', 'bench', 'admin', 'bench')")
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="cloudops-bench-"))
    env = {**os.environ, "DATABASE_URL": db_url, "CLOUDOPS_MODE": "local",
           "CLOUDOPS_HOME": str(home), "CLOUDOPS_TASK_QUEUE": "tasks",
           "CLOUDOPS_PIPELINE_KEYS": f"bench={hashlib.sha256(admin_key.encode()).hexdigest()}",
           "CLOUDOPS_AGENT_HEARTBEAT_SECONDS": str(args.heartbeat),
           "CLOUDOPS_AGENT_LEASE_SECONDS": str(args.heartbeat * 3),
           "CLOUDOPS_LOG_LEVEL": "WARNING"}
    host = subprocess.Popen([sys.executable, "-m", "cli.main", "local", "--port", str(port),
                             "--no-demo", "--log-level", "WARNING"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=(home / "host.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or host.poll() is not None:
                raise RuntimeError("local host did not start: " +
                                   (home / "host.log").read_text()[-2000:])
            time.sleep(0.2)
        bench = Bench(base, admin_key, db_url)
        pool = "bench"
        bench.api("POST", "/api/pools", headers=bench.admin, json={"name": pool})
        baseline = baseline_notify(db_url, 300)
        idle_keys = bench.register(pool, args.agents, ["idle"])
        (pick_key,) = bench.register(pool, 1, ["bench"])
        beat = args.heartbeat if args.idle_heartbeats else 0.0
        out = asyncio.run(run_idle(bench, pool, idle_keys, args.idle_seconds, host.pid, beat,
                                   lambda: pickup_rounds(bench, pool, pick_key, args.jobs)))
    finally:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(30)
        except subprocess.TimeoutExpired:
            host.kill()
        drop_database(admin_srv, name)
    pickup: list[float] = out["pickup"]
    figures = {
        "bench": "pickup",
        "p50_ms": round(statistics.median(pickup), 2),
        "p99_ms": round(pct(pickup, 99), 2),
        "jobs": len(pickup),
        "idle_agents": args.agents,
        "idle_cpu_pct_of_core": round(out["cpu_pct"], 2),
        "idle_heartbeat_seconds": args.heartbeat if args.idle_heartbeats else None,
        "idle_polls": out["stats"]["polls"],
        "idle_heartbeats": out["stats"]["heartbeats"],
        "baseline_notify_p50_ms": round(statistics.median(baseline), 3),
        "baseline_notify_p99_ms": round(pct(baseline, 99), 3),
    }
    figures["pickup_over_notify_p50"] = round(
        figures["p50_ms"] / max(figures["baseline_notify_p50_ms"], 1e-6), 1)
    rows = [
        ("job pickup (committed → agent has it)", f"p50 {figures['p50_ms']} ms",
         f"p99 {figures['p99_ms']} ms", f"{len(pickup)} jobs"),
        ("baseline: bare LISTEN/NOTIFY", f"p50 {figures['baseline_notify_p50_ms']} ms",
         f"p99 {figures['baseline_notify_p99_ms']} ms", "300 rounds"),
        (f"{args.agents} idle agents (poll 50 s"
         + (f", heartbeat {args.heartbeat:g} s)" if args.idle_heartbeats else ")"),
         f"host CPU {figures['idle_cpu_pct_of_core']}% of one core",
         f"{args.idle_seconds:g} s window", ""),
    ]
    for row in rows:
        print(f"{row[0]:<55} {row[1]:<30} {row[2]:<18} {row[3]}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
