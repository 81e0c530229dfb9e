"""Benchmark of the local Durable engine (``./bench.sh durable``).

Figures, all with the real ``azure-functions-durable`` SDK replaying the orchestrators:

- ``sequential_activities_per_s``: one orchestration calling 1,000 activities one after
  another (in-memory store, extended sessions; the full-replay figure is printed too).
- ``orchestrations_per_s``: 1,000 orchestrations of 5 sequential activities, all started
  at once, until the last completes (in-memory store).
- ``baseline_orchestrations_per_s``: the same 1,000 x 5 workload on ``durabletask``'s
  in-memory test backend (``durabletask.testing``: gRPC sidecar + worker) in this run;
  ``ratio`` = ours / baseline.
- The same two workloads on the Postgres store are printed (1,000 sequential activities,
  200 x 5 orchestrations), on a throwaway database of ``DATABASE_URL`` (or the embedded
  server when unset). Their rates follow the machine's load (the server and this process
  share its cores), so the CPU each sequential activity and each orchestration costs is
  printed too: this process's, and on the embedded server the server's (its processes'
  CPU from /proc); ``pg_cpu_bound_orchestrations_per_s`` is the rate those costs allow
  on one core, and the group commits per orchestration count its round trips.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import azure.durable_functions as df  # noqa: E402
import azure.functions as func  # noqa: E402

from localhost.durable.catalog import direct_invoker, functions_from_app  # noqa: E402
from localhost.durable.engine import Engine  # noqa: E402
from localhost.durable.store import InstanceStore  # noqa: E402

SEQUENTIAL = 1000
PG_SEQUENTIAL = 1000
INSTANCES = 1000
STEPS = 5


def make_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.activity_trigger(input_name="value")
    def add_one(value: int) -> int:
        return value + 1

    @app.orchestration_trigger(context_name="context")
    def sequence(context: df.DurableOrchestrationContext):
        value = 0
        for _ in range(context.get_input()):
            value = yield context.call_activity("add_one", value)
        return value

    return app


async def run_sequential(count: int, store: InstanceStore | None = None,
                         sessions: bool = True, cpu: dict[str, float] | None = None) -> float:
    engine = Engine(functions_from_app(make_app()), direct_invoker(), store,
                    extended_sessions=sessions)
    await engine.start()
    try:
        server_before, client_before = _server_cpu(), time.process_time()
        started = time.perf_counter()
        iid = await engine.start_new("sequence", None, json.dumps(count))
        inst = await engine.wait_for(iid, 600)
        elapsed = time.perf_counter() - started
        assert inst.output == json.dumps(count), inst.output
        if cpu is not None:
            cpu["client_ms"] = (time.process_time() - client_before) * 1000 / count
            server_after = _server_cpu()
            if server_before is not None and server_after is not None:
                cpu["server_ms"] = (server_after - server_before) * 1000 / count
        return count / elapsed
    finally:
        await engine.stop()


async def run_many(instances: int, store: InstanceStore | None = None,
                   cpu: dict[str, float] | None = None) -> float:
    engine = Engine(functions_from_app(make_app()), direct_invoker(), store)
    await engine.start()
    try:
        server_before, client_before = _server_cpu(), time.process_time()
        started = time.perf_counter()
        ids = [await engine.start_new("sequence", None, json.dumps(STEPS))
               for _ in range(instances)]
        done = await asyncio.gather(*(engine.wait_for(i, 600) for i in ids))
        elapsed = time.perf_counter() - started
        if cpu is not None:
            cpu["client_ms"] = (time.process_time() - client_before) * 1000 / instances
            server_after = _server_cpu()
            if server_before is not None and server_after is not None:
                cpu["server_ms"] = (server_after - server_before) * 1000 / instances
            cpu["commits"] = getattr(store, "batches", 0) / instances
        assert all(d.output == json.dumps(STEPS) for d in done)
        return instances / elapsed
    finally:
        await engine.stop()


def _server_cpu() -> float | None:
    """CPU seconds of the embedded Postgres server (its processes, and the ones that ended:
    the postmaster's reaped children); None for a server elsewhere (DATABASE_URL)."""
    if os.environ.get("DATABASE_URL"):
        return None
    try:
        root = int((ROOT / ".cloudops" / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(pid) == root:
            total += sum(int(f) for f in fields[11:15]) / tick
        elif int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_baseline(instances: int) -> float:
    """The same workload on durabletask's in-memory backend (gRPC, worker threads)."""
    from durabletask import client as dt_client
    from durabletask import task as dt_task
    from durabletask import worker as dt_worker
    from durabletask.testing import create_test_backend

    def add_one(ctx: dt_task.ActivityContext, value: int) -> int:
        return value + 1

    def sequence(ctx: dt_task.OrchestrationContext, steps: int):
        value = 0
        for _ in range(steps):
            value = yield ctx.call_activity(add_one, input=value)
        return value

    port = _free_port()
    backend = create_test_backend(port=port)
    address = f"localhost:{port}"
    quiet = logging.getLogger("bench.durabletask")
    quiet.setLevel(logging.ERROR)
    worker = dt_worker.TaskHubGrpcWorker(host_address=address, logger=quiet)
    worker.add_orchestrator(sequence)
    worker.add_activity(add_one)
    worker.start()
    client = dt_client.TaskHubGrpcClient(host_address=address, logger=quiet)
    try:
        started = time.perf_counter()
        ids = [client.schedule_new_orchestration(sequence, input=STEPS)
               for _ in range(instances)]
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=600)
            assert state is not None and state.serialized_output == str(STEPS)
        return instances / (time.perf_counter() - started)
    finally:
        worker.stop()
        backend.stop()


def _admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from shared.db.embedded import embedded_server_url

    return embedded_server_url(ROOT / ".cloudops", database="postgres")


async def run_postgres() -> dict[str, float]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from localhost.durable.pg_store import PostgresStore

    admin = _admin_url()
    name = f"durable_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(**{**conninfo_to_dict(admin), "dbname": name})
    try:
        seq: dict[str, float] = {}
        cpu: dict[str, float] = {}
        figures = {
            "pg_sequential_activities_per_s": await run_sequential(
                PG_SEQUENTIAL, PostgresStore(url), cpu=seq),
            "pg_client_cpu_ms_per_activity": seq["client_ms"],
            "pg_orchestrations_per_s": await run_many(200, PostgresStore(url), cpu),
            "pg_client_cpu_ms_per_orchestration": cpu["client_ms"],
            "pg_commits_per_orchestration": cpu["commits"],
        }
        if "server_ms" in seq:
            figures["pg_server_cpu_ms_per_activity"] = seq["server_ms"]
        if "server_ms" in cpu:
            figures["pg_server_cpu_ms_per_orchestration"] = cpu["server_ms"]
            figures["pg_cpu_bound_orchestrations_per_s"] = 1000 / (cpu["client_ms"]
                                                                   + cpu["server_ms"])
        return figures
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.getLogger().setLevel(logging.ERROR)
    figures: dict[str, Any] = {"bench": "durable"}
    figures["sequential_activities_per_s"] = asyncio.run(run_sequential(SEQUENTIAL))
    figures["full_replay_sequential_activities_per_s"] = asyncio.run(
        run_sequential(100, sessions=False))
    figures["orchestrations_per_s"] = asyncio.run(run_many(INSTANCES))
    figures["baseline_orchestrations_per_s"] = run_baseline(INSTANCES)
    figures["ratio"] = figures["orchestrations_per_s"] / figures["baseline_orchestrations_per_s"]
    try:
        figures.update(asyncio.run(run_postgres()))
    except Exception as exc:  # no database here: say so, keep the in-memory figures
        print(f"(Postgres figures skipped: {exc})")
    rows = [
        ("sequential activities/s, 1 orchestration x 1000 (memory, extended sessions)",
         "sequential_activities_per_s", "target >= 1000"),
        ("sequential activities/s, 1 x 100 (memory, full replay every episode)",
         "full_replay_sequential_activities_per_s", "protocol path"),
        ("orchestrations/s, 1000 x 5 activities (memory)", "orchestrations_per_s",
         "target >= 300"),
        ("baseline: durabletask in-memory backend, same workload",
         "baseline_orchestrations_per_s", "same run"),
        ("ratio ours / baseline", "ratio", "target >= 2"),
        ("sequential activities/s, 1 x 1000 (Postgres store)",
         "pg_sequential_activities_per_s", "target >= 1500"),
        ("  CPU ms per sequential activity, this process", "pg_client_cpu_ms_per_activity",
         "load-independent"),
        ("  CPU ms per sequential activity, Postgres server", "pg_server_cpu_ms_per_activity",
         "embedded server only"),
        ("orchestrations/s, 200 x 5 activities (Postgres store)", "pg_orchestrations_per_s",
         "target >= 400"),
        ("  CPU ms per orchestration, this process", "pg_client_cpu_ms_per_orchestration",
         "load-independent"),
        ("  CPU ms per orchestration, Postgres server", "pg_server_cpu_ms_per_orchestration",
         "embedded server only"),
        ("  orchestrations/s those CPU costs allow on one core",
         "pg_cpu_bound_orchestrations_per_s", "target >= 400"),
        ("  group commits (round trips) per orchestration", "pg_commits_per_orchestration",
         "plus 1 create"),
    ]
    figures["load_average"] = os.getloadavg()[0]
    print(f"{'measure':<80} {'value':>10}  note")
    for label, key, note in rows:
        if key in figures:
            print(f"{label:<80} {figures[key]:>10.1f}  {note}")
    print(f"load average {figures['load_average']:.2f} (2 cores, shared)")
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                      for k, v in figures.items()}))


if __name__ == "__main__":
    main()
