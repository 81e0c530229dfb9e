"""Service Bus emulation throughput: messages/s through a no-op session trigger.

Workloads (same run):
- baseline: a bare ``asyncio.Queue`` with 8 consumers awaiting a no-op coroutine;
- the host: N messages over S sessions enqueued in-process, drained by the app's no-op
  session-enabled ``serviceBusTrigger`` (8 concurrent sessions, per-session order kept);
- the app's local adapter: messages/s sent over the REST send API from 4 threads.
Prints a table and one JSON line. Usage: ./bench.sh bus [--messages 20000] [--sessions 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from localhost.host import Host  # noqa: E402
from localhost.servicebus.broker import BrokeredMessage  # noqa: E402

APP = ROOT / "tests" / "localhost" / "apps" / "bench"


async def baseline(messages: int, consumers: int = 8) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    done = [0]

    async def noop(_: bytes) -> None:
        done[0] += 1

    async def consume() -> None:
        while True:
            item = await queue.get()
            await noop(item)
            queue.task_done()

    start = time.perf_counter()
    for i in range(messages):
        queue.put_nowait(b'{"i": %d}' % i)
    tasks = [asyncio.create_task(consume()) for _ in range(consumers)]
    await queue.join()
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    return messages / elapsed


async def through_host(messages: int, sessions: int) -> tuple[float, float]:
    host = Host(APP, port=0, state_dir=Path(tempfile.mkdtemp()))
    await host.start()
    try:
        bus = host.extension("servicebus")
        processed = host.module.processed
        start = time.perf_counter()
        for i in range(messages):
            bus.send("bench", BrokeredMessage(  # type: ignore[union-attr]
                body=b'{"i": %d}' % i, message_id=f"m{i}", session_id=f"s{i % sessions}"))
        while processed[0] < messages:
            await asyncio.sleep(0.005)
        rate = messages / (time.perf_counter() - start)

        from shared.bus import BusMessage
        from shared.bus.local import LocalServiceBus

        adapter = LocalServiceBus("bench", os.environ["ServiceBusConnection"])
        sends = max(200, messages // 20)
        counter = iter(range(sends))
        lock = threading.Lock()

        def sender() -> None:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                adapter.send(BusMessage(session_id=f"r{i % sessions}", message_id=f"r{i}",
                                        body={"i": i}))

        loop = asyncio.get_running_loop()
        begin = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, sender) for _ in range(4)))
        rest_rate = sends / (time.perf_counter() - begin)
        while processed[0] < messages + sends:
            await asyncio.sleep(0.005)
        return rate, rest_rate
    finally:
        await host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=100)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    base = asyncio.run(baseline(args.messages))
    host_rate, rest_rate = asyncio.run(through_host(args.messages, args.sessions))
    print(f"{'workload':<58} {'msgs/s':>9}")
    print(f"{'bare asyncio.Queue, 8 consumers (baseline)':<58} {base:>9.0f}")
    print(f"{f'host: session trigger, {args.sessions} sessions, 8 concurrent':<58} "
          f"{host_rate:>9.0f}")
    print(f"{'host: sends via the app adapter (REST, 4 threads)':<58} {rest_rate:>9.0f}")
    print(json.dumps({"bench": "bus", "messages": args.messages, "sessions": args.sessions,
                      "messages_per_s": round(host_rate),
                      "baseline_messages_per_s": round(base),
                      "ratio": round(host_rate / base, 3),
                      "rest_sends_per_s": round(rest_rate)}))


if __name__ == "__main__":
    main()
