"""SignalR emulation: publish → receive latency with 1,000 connected clients, and broadcast
throughput, beside a same-run baseline (a bare aiohttp WebSocket echo server).

Each server and publisher runs in its own process, the clients in this one:
- latency: 1,000 clients each in group ``task:{i}``; a publisher process sends events
  through the app's REST adapter (``RestRealtime.send_to_group``) to random groups at a
  steady rate; latency = client receive time - publish start (``perf_counter`` is the
  system-wide monotonic clock on Linux, so it compares across processes);
- broadcast: ``send_to_all`` as fast as one publisher can; deliveries are counted until
  every client has every message (the 1,000 Python clients, not the server, limit this:
  the table shows the server's CPU share);
- baseline: the same 1,000 clients on a bare aiohttp echo endpoint; a message sent on a
  random client's socket at the same rate is timed until its echo arrives.
Usage: ./bench.sh signalr [--clients 1000] [--events 2000] [--rate 500] [--broadcasts 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

RS = "\x1e"


# --- servers (child processes) ------------------------------------------------------------
async def _serve(kind: str, port: int, state_dir: str) -> None:
    app = web.Application()
    if kind == "signalr":
        from localhost.signalr import SignalRExtension

        ext = SignalRExtension(set_connection_setting=False)
        ext.attach(app, base_url=f"http://127.0.0.1:{port}", state_dir=Path(state_dir))
    else:
        async def echo(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_str(msg.data)
            return ws
        app.router.add_get("/echo", echo)
    runner = web.AppRunner(app, handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    if kind == "signalr":
        await ext.start()
        print(ext.connection_string, flush=True)
    else:
        print("ready", flush=True)
    await asyncio.Event().wait()


def start_server(kind: str, state_dir: str) -> tuple[subprocess.Popen[str], int, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port), state_dir],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"{kind} server did not start")
    return proc, port, line


# --- measurements -------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), to show which side is the bottleneck."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def connect_signalr(session: aiohttp.ClientSession, rt: Any, n: int) -> list[Any]:
    async def one(i: int) -> Any:
        info = rt.negotiate(f"user-{i}")
        headers = {"Authorization": f"Bearer {info['accessToken']}"}
        base, _, query = info["url"].partition("?")
        async with session.post(f"{base}negotiate?{query}&negotiateVersion=1",
                                headers=headers) as resp:
            neg = await resp.json()
        ws = await session.ws_connect(
            info["url"].replace("http", "ws", 1) + f"&id={neg['connectionToken']}",
            headers=headers, autoping=True)
        await ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert (await ws.receive()).data == "{}" + RS
        return neg["connectionId"], ws
    conns = []
    for start in range(0, n, 100):  # in batches: a connect storm is not what we measure
        conns += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100))))
    return conns


async def read_invocations(ws: Any, on_message: Any) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        now = time.perf_counter()
        for part in msg.data.split(RS)[:-1]:
            if part.startswith('{"type":1'):
                on_message(json.loads(part)["arguments"][0], now)


async def settle(done: Any, timeout: float = 30.0) -> None:
    """Wait until ``done()``; give up after ``timeout`` (lost messages are reported)."""
    deadline = time.perf_counter() + timeout
    while not done() and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)


class Publisher:
    """A child process publishing through ``RestRealtime``; started ahead, run on ``go``."""

    def __init__(self, conn_string: str, mode: str, count: int, rate: float,
                 clients: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--publish", conn_string, mode, str(count), str(rate),
             str(clients)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("publisher did not start")

    def run(self) -> int:
        """Publish everything; return how many publishes the service accepted."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        accepted = int(self.proc.stdout.readline())
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()
        return accepted


def publisher_main(conn_string: str, mode: str, count: int, rate: float,
                   clients: int) -> None:
    from shared.realtime import RestRealtime
    from shared.realtime.connection_string import parse_connection_string

    rt = RestRealtime(parse_connection_string(conn_string), "bench", pool_size=2)
    rt.send_to_group("warm-up", "noop", [])  # open the pooled connection before timing
    accepted = [0]

    def publish(i: int) -> None:
        if mode == "group":
            accepted[0] += rt.send_to_group(f"task:{random.randrange(clients)}",
                                            "taskUpdated", [{"t": time.perf_counter()}])
        else:
            accepted[0] += rt.send_to_all("taskUpdated", [{"b": i}])
    print("ready", flush=True)
    sys.stdin.readline()
    paced(count, rate, publish)
    rt.close()
    print(accepted[0], flush=True)


def paced(count: int, rate: float, action: Any) -> None:
    """Call ``action(i)`` ``count`` times at ``rate`` per second (0 = as fast as possible)."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter() if rate else 0
        if delay > 0:
            time.sleep(delay)
        action(i)


async def bench_signalr(clients: int, events: int, rate: float, broadcasts: int,
                        state_dir: str) -> dict[str, float]:
    from shared.realtime import RestRealtime
    from shared.realtime.connection_string import parse_connection_string

    proc, _port, conn_string = start_server("signalr", state_dir)
    rt = RestRealtime(parse_connection_string(conn_string), "bench", pool_size=4)
    try:  # this process's adapter only negotiates and joins groups
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            conns = await connect_signalr(session, rt, clients)
            for i, (cid, _ws) in enumerate(conns):
                await asyncio.to_thread(rt.add_to_group, f"task:{i}", cid)
            latencies: list[float] = []
            seen: dict[int, int] = {}
            all_seen = asyncio.Event()
            loop = asyncio.get_running_loop()

            def on_message(arg: dict[str, Any], now: float) -> None:
                if "t" in arg:
                    latencies.append((now - arg["t"]) * 1000)
                else:
                    n = seen[arg["b"]] = seen.get(arg["b"], 0) + 1
                    if n == clients and len(seen) == broadcasts and all(
                            v == clients for v in seen.values()):
                        all_seen.set()

            readers = [loop.create_task(read_invocations(ws, on_message)) for _, ws in conns]

            # The publisher is its own process (as activities are, elsewhere): in this one
            # it would fight 1,000 reader tasks for the GIL and time itself, not the path.
            publisher = await asyncio.to_thread(
                Publisher, conn_string, "group", events, rate, clients)
            accepted = await asyncio.to_thread(publisher.run)
            await settle(lambda: len(latencies) >= accepted)
            lost = accepted - len(latencies)

            publisher = await asyncio.to_thread(
                Publisher, conn_string, "all", broadcasts, 0, clients)
            start, server_cpu = time.perf_counter(), cpu_seconds(proc.pid)
            await asyncio.to_thread(publisher.run)
            await settle(all_seen.is_set, 60)
            broadcast_s = time.perf_counter() - start
            server_cpu = cpu_seconds(proc.pid) - server_cpu
            for _, ws in conns:
                await ws.close()
            await asyncio.gather(*readers, return_exceptions=True)
    finally:
        rt.close()
        proc.terminate()
        proc.wait(10)
    delivered = sum(seen.values())  # == broadcasts * clients unless some were lost
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies), "broadcast_per_s": delivered / clients / broadcast_s,
            "deliveries_per_s": delivered / broadcast_s,
            "server_cpu_share": server_cpu / broadcast_s, "lost": lost,
            "refused": events - accepted}


async def bench_baseline(clients: int, events: int, rate: float,
                         state_dir: str) -> dict[str, float]:
    proc, port, _ = start_server("echo", state_dir)
    latencies: list[float] = []
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            sockets = []
            for start in range(0, clients, 100):
                sockets += await asyncio.gather(*(
                    session.ws_connect(f"ws://127.0.0.1:{port}/echo")
                    for _ in range(start, min(clients, start + 100))))

            async def read(ws: Any) -> None:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    latencies.append((time.perf_counter() - json.loads(msg.data)["t"]) * 1000)
            loop = asyncio.get_running_loop()
            readers = [loop.create_task(read(ws)) for ws in sockets]

            # Same pacing as the publisher thread, but sends must happen on the loop.
            t0 = time.perf_counter()
            for i in range(events):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                ws = sockets[random.randrange(clients)]
                await ws.send_str(json.dumps({"t": time.perf_counter()}))
            await settle(lambda: len(latencies) >= events)
            for ws in sockets:
                await ws.close()
            await asyncio.gather(*readers, return_exceptions=True)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(_serve(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        publisher_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]),
                       int(sys.argv[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--broadcasts", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        base = asyncio.run(bench_baseline(args.clients, args.events, args.rate, tmp))
        sig = asyncio.run(bench_signalr(args.clients, args.events, args.rate,
                                        args.broadcasts, tmp))
    print(f"SignalR emulation, {args.clients} connected clients, {args.events} events "
          f"at {args.rate:.0f}/s")
    print(f"{'workload':<44}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    print(f"{'baseline: bare aiohttp WebSocket echo':<44}{base['p50_ms']:>9.2f}"
          f"{base['p99_ms']:>9.2f}{base['max_ms']:>9.2f}")
    print(f"{'REST publish -> group member (emulation)':<44}{sig['p50_ms']:>9.2f}"
          f"{sig['p99_ms']:>9.2f}{sig['max_ms']:>9.2f}")
    if sig["lost"] or sig["refused"]:
        print(f"WARNING: {sig['refused']} publishes refused, {sig['lost']} accepted but "
              "never received")
    print(f"broadcast to all {args.clients}: {sig['broadcast_per_s']:.0f} messages/s "
          f"({sig['deliveries_per_s']:.0f} deliveries/s; server process busy "
          f"{sig['server_cpu_share']:.0%} of one core, the rest is the 1,000 Python clients)")
    print(json.dumps({
        "bench": "signalr", "clients": args.clients,
        "p50_ms": round(sig["p50_ms"], 2), "p99_ms": round(sig["p99_ms"], 2),
        "broadcast_per_s": round(sig["broadcast_per_s"], 1),
        "deliveries_per_s": round(sig["deliveries_per_s"]),
        "lost": sig["lost"], "refused": sig["refused"],
        "baseline_p50_ms": round(base["p50_ms"], 2),
        "baseline_p99_ms": round(base["p99_ms"], 2),
        "ratio_p99": round(sig["p99_ms"] / base["p99_ms"], 2) if base["p99_ms"] else None}))


if __name__ == "__main__":
    main()
