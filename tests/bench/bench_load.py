"""Mixed load on the local host: API reads at a steady rate, operations across many
environments, hundreds of long-polling agents and SignalR clients, all at once.

Runs the real local host (``cloudops local``, this repository's app) as a subprocess on a
throwaway database of the configured Postgres (``DATABASE_URL``, else the embedded one);
every client lives in this process on one event loop (aiohttp):

- ``--agents`` (500) agents registered through the API, each holding a long poll
  (``GET /api/agent/jobs/next?wait=20``) and heartbeating every 20 s;
- ``--signalr`` (200) SignalR clients speaking the JSON hub protocol, each through
  ``POST /api/negotiate`` and joined to one project's group, counting ``taskUpdated``;
  they all start at the same instant before the mix (``startup negotiate`` / ``startup
  join group``: a burst, so their p50 is about half the burst's queue);
- ``--page-rate`` (2/s) page opens during the mix (``negotiate`` / ``join group``): what
  one page waits, under the load, before its first live update can arrive;
- ``--ops-rate`` (5/s) deploys across ``--envs`` (50) environments (noop targets);
- ``--read-rate`` (40/s) API reads: task list, one task, its logs, the project list.

Before the load, the same reads run alone (the same-run baseline); the ratio is read p50
under load over idle read p50. The host's RSS is sampled every second: the peak, and the
growth from the end of the warm-up (first quarter, at most 30 s) to the end.

Usage: ./bench.sh load [--duration 150] [--agents 500] [--signalr 200] [--envs 50]
Prints a table and one JSON line; exits 1 if any request got a 5xx.
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
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.conftest import (  # noqa: E402
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.realtime._client import HubClient  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.failures: dict[str, int] = defaultdict(int)

    async def call(self, http: aiohttp.ClientSession, name: str, method: str, url: str,
                   **kw: Any) -> tuple[int, Any]:
        start = time.perf_counter()
        try:
            async with http.request(method, url, **kw) as r:
                body = await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError):
            self.failures[name] += 1
            return 0, None
        self.latency[name].append((time.perf_counter() - start) * 1000)
        self.status[name][status] += 1
        return status, body

    def server_errors(self) -> int:
        return sum(n for codes in self.status.values() for c, n in codes.items() if c >= 500)


class Load:
    def __init__(self, host: RunningHost, args: argparse.Namespace) -> None:
        self.host, self.args = host, args
        session = host.session("loader", ("admin",))
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        self.rec = Recorder()
        self.stop = asyncio.Event()
        self.projects: list[dict[str, str]] = []
        self.task_ids: list[str] = []
        self.rss: list[tuple[float, int]] = []
        self.agent_polls = 0
        self.hubs: list[HubClient] = []
        self.keepalives: list[asyncio.Task[None]] = []

    @property
    def admin(self) -> dict[str, str]:
        return {"Cookie": self.cookie}

    def url(self, path: str) -> str:
        return self.host.url(path)

    async def setup(self, http: aiohttp.ClientSession) -> list[str]:
        for i in range(self.args.envs):
            slug = f"load-{i:03d}"
            async with http.post(self.url("/api/projects"), headers=self.admin,
                                 json={"slug": slug, "name": slug}) as r:
                project = await r.json()
            async with http.post(self.url(f"/api/projects/{slug}/environments"),
                                 headers=self.admin, json={"slug": "dev", "name": "dev",
                                                           "target": {"type": "noop"}}) as r:
                assert r.status == 201, await r.text()
            self.projects.append({"slug": slug, "id": project["id"]})
        async with http.post(self.url("/api/pools"), headers=self.admin,
                             json={"name": "load"}) as r:
            assert r.status == 201, await r.text()
        async with http.post(self.url("/api/pools/load/registration-tokens"), headers=self.admin,
                             json={"multiUse": True, "maxUses": self.args.agents}) as r:
            token = (await r.json())["token"]
        keys = []
        for i in range(self.args.agents):
            async with http.post(self.url("/api/agent/register"), json={
                    "token": token, "name": f"load-{i}", "labels": ["idle"]}) as r:
                keys.append((await r.json())["key"])
        return keys

    async def agent(self, http: aiohttp.ClientSession, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        await asyncio.sleep(random.uniform(0, 5))  # agents start at different times
        last_beat = 0.0
        while not self.stop.is_set():
            if time.monotonic() - last_beat > 20:
                await self.rec.call(http, "agent heartbeat", "POST",
                                    self.url("/api/agent/heartbeat"), json={"running": []},
                                    headers=headers)
                last_beat = time.monotonic()
            status, _ = await self.rec.call(http, "agent long poll", "GET",
                                            self.url("/api/agent/jobs/next?wait=20"),
                                            headers=headers)
            self.agent_polls += 1
            if status != 204 and status != 200:
                await asyncio.sleep(1)

    async def signalr(self, http: aiohttp.ClientSession, project_id: str, *,
                      prefix: str = "startup ", stay: bool = True) -> None:
        status, body = await self.rec.call(http, prefix + "negotiate", "POST",
                                           self.url("/api/negotiate"), headers=self.admin)
        if status != 200:
            return
        info = json.loads(body)
        hub = await HubClient(http, info["url"], info["accessToken"]).connect()
        await self.rec.call(http, prefix + "join group", "POST",
                            self.url(f"/api/realtime/groups/project:{project_id}"),
                            headers=self.admin, json={"connectionId": hub.connection_id})
        if not stay:  # a page opened during the mix: measured, then closed
            await hub.close()
            return
        self.hubs.append(hub)
        self.keepalives.append(asyncio.create_task(self.keepalive(hub)))

    async def page(self, http: aiohttp.ClientSession, n: int) -> None:
        await self.signalr(http, random.choice(self.projects)["id"], prefix="", stay=False)

    async def keepalive(self, hub: HubClient) -> None:
        """A ping every 15 s, as the official client sends (the service drops clients
        silent for 30 s)."""
        while not self.stop.is_set():
            await asyncio.sleep(15)
            if hub.ws is None or hub.ws.closed:
                return
            await hub.send_raw(json.dumps({"type": 6}) + "\x1e")

    async def deploy(self, http: aiohttp.ClientSession, n: int) -> None:
        project = random.choice(self.projects)["slug"]
        status, body = await self.rec.call(
            http, "POST deployments", "POST",
            self.url(f"/api/projects/{project}/environments/dev/deployments"),
            headers=self.admin, json={"version": f"1.0.{n}"})
        if status == 202:
            self.task_ids.append(json.loads(body)["id"])

    async def read(self, http: aiohttp.ClientSession, n: int, prefix: str = "") -> None:
        kind = n % 4
        if kind == 0:
            project = random.choice(self.projects)["id"]
            await self.rec.call(http, prefix + "GET tasks?project", "GET",
                                self.url(f"/api/tasks?project={project}"), headers=self.admin)
        elif kind == 1 and self.task_ids:
            await self.rec.call(http, prefix + "GET tasks/{id}", "GET",
                                self.url(f"/api/tasks/{random.choice(self.task_ids)}"),
                                headers=self.admin)
        elif kind == 2 and self.task_ids:
            await self.rec.call(http, prefix + "GET tasks/{id}/logs", "GET",
                                self.url(f"/api/tasks/{random.choice(self.task_ids)}/logs"),
                                headers=self.admin)
        else:
            await self.rec.call(http, prefix + "GET projects", "GET", self.url("/api/projects"),
                                headers=self.admin)

    async def steady(self, rate: float, action: Any) -> None:
        """Open loop: one request every 1/rate s, whether or not the last one returned."""
        running: set[asyncio.Task[None]] = set()
        n, start = 0, time.monotonic()
        while not self.stop.is_set():
            task = asyncio.create_task(action(n))
            running.add(task)
            task.add_done_callback(running.discard)
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        await asyncio.gather(*running, return_exceptions=True)

    async def sample_rss(self) -> None:
        while not self.stop.is_set():
            self.rss.append((time.monotonic(), rss_kib(self.host.proc.pid)))
            await asyncio.sleep(1)

    async def wait_terminal(self, http: aiohttp.ClientSession, timeout: float) -> int:
        pending = set(self.task_ids)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for task_id in list(pending)[:200]:
                async with http.get(self.url(f"/api/tasks/{task_id}"),
                                    headers=self.admin) as r:
                    if (await r.json())["status"] in TERMINAL:
                        pending.discard(task_id)
            await asyncio.sleep(0.5)
        return len(pending)


async def run(load: Load) -> dict[str, Any]:
    args = load.args
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        keys = await load.setup(http)
        # same-run baseline: the read mix alone, before any other load
        for n in range(args.baseline_reads):
            await load.deploy(http, n) if n < 20 else await load.read(http, n, "idle ")
        idle = [v for k, vs in load.rec.latency.items() if k.startswith("idle ") for v in vs]
        await asyncio.gather(*(load.signalr(http, load.projects[i % len(load.projects)]["id"])
                               for i in range(args.signalr)))
        workers = [asyncio.create_task(load.agent(http, key)) for key in keys]
        workers += [asyncio.create_task(load.sample_rss()),
                    asyncio.create_task(load.steady(args.ops_rate,
                                                    lambda n: load.deploy(http, n))),
                    asyncio.create_task(load.steady(args.read_rate,
                                                    lambda n: load.read(http, n))),
                    asyncio.create_task(load.steady(args.page_rate,
                                                    lambda n: load.page(http, n)))]
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        load.stop.set()
        elapsed = time.monotonic() - started
        await asyncio.wait(workers, timeout=30)
        for worker in workers:
            worker.cancel()
        stuck = await load.wait_terminal(http, 90)
        for keepalive in load.keepalives:
            keepalive.cancel()
        events = sum(hub.invocations.qsize() for hub in load.hubs)
        open_hubs = sum(1 for hub in load.hubs if hub.ws is not None and not hub.ws.closed)
        await asyncio.gather(*(hub.close() for hub in load.hubs), return_exceptions=True)
    warm = started + min(30.0, args.duration / 4)
    after = [kib for t, kib in load.rss if t >= warm]
    loaded_reads = [v for k, vs in load.rec.latency.items()
                    if k.startswith("GET ") for v in vs]
    return {"elapsed": elapsed, "stuck": stuck, "events": events, "open_hubs": open_hubs,
            "idle_p50": pct(idle, 0.5), "loaded_p50": pct(loaded_reads, 0.5),
            "rss_peak_mib": max(k for _, k in load.rss) / 1024 if load.rss else 0,
            "rss_growth_mib": (after[-1] - after[0]) / 1024 if len(after) > 1 else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=150.0)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--signalr", type=int, default=200)
    parser.add_argument("--envs", type=int, default=50)
    parser.add_argument("--ops-rate", type=float, default=5.0)
    parser.add_argument("--read-rate", type=float, default=40.0)
    parser.add_argument("--page-rate", type=float, default=2.0)
    parser.add_argument("--baseline-reads", type=int, default=220)
    args = parser.parse_args()
    admin, name = create_throwaway_database("cloudops_bench_load")
    home = Path(tempfile.mkdtemp(prefix="bench-load-"))
    host = start_host(with_database(admin, name), home)
    try:
        load = Load(host, args)
        figures = asyncio.run(run(load))
    finally:
        stop_host(host)
        drop_database(admin, name)
    rec = load.rec
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores, shared); "
          f"{figures['elapsed']:.0f} s of load")
    print(f"{'endpoint':<26}{'count':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'5xx':>6}{'other':>7}{'conn err':>9}")
    for name_, values in sorted(rec.latency.items()):
        codes = rec.status[name_]
        other = sum(n for c, n in codes.items() if 300 <= c < 500)
        fives = sum(n for c, n in codes.items() if c >= 500)
        rate = len(values) / figures["elapsed"] if not name_.startswith("idle") else 0
        print(f"{name_:<26}{len(values):>8}{rate:>8.1f}{pct(values, 0.5):>9.1f}"
              f"{pct(values, 0.99):>9.1f}{fives:>6}{other:>7}{rec.failures[name_]:>9}")
    ops = len(load.task_ids)
    print(f"operations accepted {ops} ({ops / figures['elapsed']:.1f}/s), not terminal after"
          f" the load: {figures['stuck']}; taskUpdated events received by SignalR clients: "
          f"{figures['events']} ({figures['open_hubs']} of {args.signalr} still connected)")
    print(f"host RSS peak {figures['rss_peak_mib']:.0f} MiB, growth after warm-up "
          f"{figures['rss_growth_mib']:+.1f} MiB; read p50 {figures['loaded_p50']:.1f} ms under"
          f" load vs {figures['idle_p50']:.1f} ms alone")
    result = {
        "bench": "load", "seconds": round(figures["elapsed"]), "agents": args.agents,
        "signalr_clients": args.signalr, "environments": args.envs,
        "requests": sum(len(v) for v in rec.latency.values()),
        "requests_per_s": round(sum(len(v) for k, v in rec.latency.items()
                                    if not k.startswith("idle")) / figures["elapsed"], 1),
        "operations_per_s": round(ops / figures["elapsed"], 2),
        "operations_not_terminal": figures["stuck"],
        "p50_ms": {k: round(pct(v, 0.5), 1) for k, v in rec.latency.items()},
        "p99_ms": {k: round(pct(v, 0.99), 1) for k, v in rec.latency.items()},
        "errors_5xx": rec.server_errors(),
        "connection_errors": sum(rec.failures.values()),
        "signalr_events": figures["events"], "signalr_connected": figures["open_hubs"],
        "rss_peak_mib": round(figures["rss_peak_mib"], 1),
        "rss_growth_after_warmup_mib": round(figures["rss_growth_mib"], 1),
        "baseline_read_p50_ms": round(figures["idle_p50"], 1),
        "read_p50_ms": round(figures["loaded_p50"], 1),
        "ratio": round(figures["loaded_p50"] / figures["idle_p50"], 2)
        if figures["idle_p50"] else None,
        "load_average": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    return 1 if result["errors_5xx"] or figures["stuck"] else 0


if __name__ == "__main__":
    sys.exit(main())
