"""How long a page waits before its first live update can arrive: negotiate, connect, join.

Runs the real local host (``cloudops local``) on a throwaway database like ``bench_load``,
and measures a page's three steps (``POST /api/negotiate``, the SignalR client negotiate and
WebSocket handshake, ``POST /api/realtime/groups/project:{id}``) and their sum:

1. **idle** (the same-run baseline): ``--pages`` page opens one after another, nothing else
   running;
2. **paced under the mix**: one page opens every ``1/--page-rate`` s while ``bench_load``'s
   mix runs (``--agents`` long-polling agents, deploys at ``--ops-rate``, reads at
   ``--read-rate``, the ``--signalr`` clients already connected);
3. **burst**: ``--burst`` pages open at the same instant (what ``bench_load`` does when
   its 200 clients start), so its p50 is queueing: about half the burst's total work.

Usage: ./bench.sh livestart [--duration 40] [--agents 500] [--signalr 200] [--burst 200]
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.bench.bench_load import Load, pct  # noqa: E402
from tests.conftest import (  # noqa: E402
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.realtime._client import HubClient  # noqa: E402

STEPS = ("negotiate", "connect", "join", "ready")


class Pages:
    """Page opens, each step timed; hubs stay open until the end."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.times: dict[str, dict[str, list[float]]] = {}
        self.hubs: list[HubClient] = []
        self.failed: dict[str, int] = {}

    async def open(self, http: aiohttp.ClientSession, phase: str) -> None:
        rec = self.times.setdefault(phase, {s: [] for s in STEPS})
        project = random.choice(self.load.projects)["id"]
        t0 = time.perf_counter()
        async with http.post(self.load.url("/api/negotiate"), headers=self.load.admin) as r:
            info = await r.json() if r.status == 200 else None
        t1 = time.perf_counter()
        if info is None:
            self.failed[phase] = self.failed.get(phase, 0) + 1
            return
        hub = await HubClient(http, info["url"], info["accessToken"]).connect()
        self.hubs.append(hub)
        t2 = time.perf_counter()
        async with http.post(self.load.url(f"/api/realtime/groups/project:{project}"),
                             headers=self.load.admin,
                             json={"connectionId": hub.connection_id}) as r:
            ok = r.status == 200
            await r.read()
        t3 = time.perf_counter()
        if not ok:
            self.failed[phase] = self.failed.get(phase, 0) + 1
            return
        for step, value in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            rec[step].append(value * 1000)


async def run(args: argparse.Namespace, load: Load) -> dict[str, Any]:
    pages = Pages(load)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=90)) as http:
        keys = await load.setup(http)
        for n in range(20):
            await load.deploy(http, n)
        for _ in range(args.pages):  # 1. idle, one at a time: the baseline
            await pages.open(http, "idle")
        await asyncio.gather(*(load.signalr(http, load.projects[i % len(load.projects)]["id"])
                               for i in range(args.signalr)))
        workers = [asyncio.create_task(load.agent(http, key)) for key in keys]
        workers += [asyncio.create_task(load.steady(args.ops_rate,
                                                    lambda n: load.deploy(http, n))),
                    asyncio.create_task(load.steady(args.read_rate,
                                                    lambda n: load.read(http, n)))]
        await asyncio.sleep(5)  # agents spread their first polls over 5 s
        started = time.monotonic()
        paced: set[asyncio.Task[None]] = set()
        n = 0
        while time.monotonic() - started < args.duration:  # 2. paced under the mix
            task = asyncio.create_task(pages.open(http, "paced under load"))
            paced.add(task)
            task.add_done_callback(paced.discard)
            n += 1
            await asyncio.sleep(max(0.0, started + n / args.page_rate - time.monotonic()))
        await asyncio.gather(*paced, return_exceptions=True)
        await asyncio.gather(*(pages.open(http, "burst under load")  # 3. all at once
                               for _ in range(args.burst)))
        load.stop.set()
        await asyncio.wait(workers, timeout=30)
        for worker in workers:
            worker.cancel()
        for keepalive in load.keepalives:
            keepalive.cancel()
        await asyncio.gather(*(hub.close() for hub in pages.hubs + load.hubs),
                             return_exceptions=True)
    return {"times": pages.times, "failed": pages.failed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--page-rate", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--signalr", type=int, default=200)
    parser.add_argument("--envs", type=int, default=50)
    parser.add_argument("--ops-rate", type=float, default=5.0)
    parser.add_argument("--read-rate", type=float, default=40.0)
    args = parser.parse_args()
    admin, name = create_throwaway_database("cloudops_bench_livestart")
    home = Path(tempfile.mkdtemp(prefix="bench-livestart-"))
    host = start_host(with_database(admin, name), home)
    try:
        load = Load(host, args)
        figures = asyncio.run(run(args, load))
    finally:
        stop_host(host)
        drop_database(admin, name)
    times = figures["times"]
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores, shared)")
    print(f"{'phase':<20}{'pages':>6}" + "".join(f"{s + ' p50':>15}{'p99':>8}" for s in STEPS))
    for phase, rec in times.items():
        print(f"{phase:<20}{len(rec['ready']):>6}" + "".join(
            f"{pct(rec[s], 0.5):>15.1f}{pct(rec[s], 0.99):>8.1f}" for s in STEPS))
    result: dict[str, Any] = {"bench": "livestart", "failed": figures["failed"]}
    for phase, rec in times.items():
        key = phase.replace(" ", "_")
        result[key] = {s: {"p50_ms": round(pct(rec[s], 0.5), 1),
                           "p99_ms": round(pct(rec[s], 0.99), 1)} for s in STEPS}
    idle, paced = times.get("idle"), times.get("paced under load")
    result["baseline_ready_p50_ms"] = round(pct(idle["ready"], 0.5), 1) if idle else None
    if idle and paced:
        result["ratio"] = round(pct(paced["ready"], 0.5) / pct(idle["ready"], 0.5), 2)
    result["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
