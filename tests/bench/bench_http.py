"""HTTP trigger throughput of the local host, beside a bare aiohttp handler (same run).

The server runs in a child process and the load generator (aiohttp client, N concurrent
keep-alive connections) in this one, so both get a core. Prints a table and one JSON line.
Usage: ./bench.sh http [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "localhost" / "apps" / "bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(kind: str, port: int) -> None:
    sys.path.insert(0, str(ROOT))

    async def main() -> None:
        if kind == "baseline":
            async def handler(request: web.Request) -> web.Response:
                return web.Response(text="ok")
            app = web.Application()
            app.router.add_get("/api/noop", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
        else:
            import logging

            logging.disable(logging.WARNING)
            from localhost.host import Host

            host = Host(APP, port=port, state_dir=Path(tempfile.mkdtemp()))
            await host.start()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _load(url: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")
                if record:
                    latencies.append(time.perf_counter() - start)

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        begin = time.perf_counter()
        await asyncio.gather(*(worker(begin + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    return len(latencies) / elapsed, sorted(latencies)


def _measure(kind: str, path: str, seconds: float, concurrency: int) -> dict[str, float]:
    port = _free_port()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(kind, port),
                                                           daemon=True)
    process.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        rate, latencies = asyncio.run(_load(f"http://127.0.0.1:{port}{path}", seconds,
                                            concurrency))
    finally:
        process.terminate()
        process.join(10)
    return {"rps": rate, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    rows = {
        "bare aiohttp handler (baseline)": _measure("baseline", "/api/noop", args.seconds,
                                                    args.concurrency),
        "local host, async no-op function": _measure("host", "/api/noop", args.seconds,
                                                     args.concurrency),
        "local host, sync no-op function": _measure("host", "/api/noop-sync", args.seconds,
                                                    args.concurrency),
    }
    print(f"{'workload':<36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, row in rows.items():
        print(f"{name:<36} {row['rps']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")
    baseline = rows["bare aiohttp handler (baseline)"]["rps"]
    host = rows["local host, async no-op function"]["rps"]
    print(json.dumps({
        "bench": "http", "concurrency": args.concurrency,
        "requests_per_s": round(host),
        "sync_requests_per_s": round(rows["local host, sync no-op function"]["rps"]),
        "baseline_requests_per_s": round(baseline),
        "ratio": round(host / baseline, 2),
        "p50_ms": round(rows["local host, async no-op function"]["p50_ms"], 2)}))


if __name__ == "__main__":
    main()
