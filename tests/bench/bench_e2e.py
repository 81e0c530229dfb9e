"""End-to-end no-op tasks: HTTP POST → Service Bus session → orchestration → Postgres →
terminal, on the local host running our app, beside the same run's raw Postgres commit rate.

Two phases: as many tasks as the clients can send (throughput, and the latency of a
saturated queue), then tasks paced below saturation (the latency a caller sees).

Tasks are deploys to dry-run (``noop``) environments, spread over many environments so
they run in parallel. Latency is the task's own ``finished_at - created_at`` (one clock:
the database's), so polling cost does not distort it. The baseline is the rate of
single-row INSERT+COMMIT transactions on the same server with the same client
concurrency: a task needs several commits, so ``pg_commits_per_s / tasks_per_s`` says how
close the pipeline is to the physical limit.

Usage: ./bench.sh e2e [--tasks 600] [--environments 50] [--concurrency 16]
                    [--workers 2] [--profile out.txt]

``--workers N`` runs the host with ``FUNCTIONS_WORKER_PROCESS_COUNT=N`` (2 by default, one
per core; 1 is every function in the host's own process). CPU is counted for the host
process and, separately, for its worker processes.

``--profile`` samples the host with py-spy (a dev dependency) during the saturated phase
and writes the share of GIL-holding samples per part of the pipeline (the breakdown in
docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_durable import _server_cpu  # noqa: E402
from tests.conftest import (  # noqa: E402
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)


def commit_rate(url: str, concurrency: int, seconds: float = 3.0) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commits (id bigserial, at timestamptz)")

    def worker(_: int) -> int:
        done = 0
        with psycopg.connect(url) as conn:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                conn.execute("INSERT INTO bench_commits (at) VALUES (now())")
                conn.commit()
                done += 1
        return done

    with ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(worker, range(concurrency)))
    return total / seconds


# ---- the Azure bill per task --------------------------------------------------------
# List prices (USD, pay-as-you-go, East US) as read on 2026-11-30 from the Azure pricing
# pages and the pages quoting them (the Functions page renders its figures client-side;
# the Flex Consumption and Consumption rates below are those published for 2025). Check
# them again before relying on the result: they change.
PRICES = {
    "functions_flex_per_million_executions": 0.40,  # Flex Consumption, on demand
    "functions_flex_per_gb_s": 0.000026,  # Flex Consumption, on demand, 2 GB instance
    "servicebus_standard_per_million_ops": 0.80,  # 13M-100M ops/month (first 13M included)
    "signalr_per_million_messages": 1.00,  # beyond 1M/unit/day; outbound, 2 KB units
    "storage_table_per_10k_transactions": 0.00036,  # Standard LRS
    "storage_queue_per_10k_operations": 0.004,  # Standard LRS, class 1 and 2 (GPv2)
}
PRICES_DATE = "2026-11-30"
INSTANCE_GB = 2.0  # Flex Consumption instance memory


def metrics(host) -> dict:  # type: ignore[no-untyped-def]
    r = requests.get(host.url("/admin/host/status"),
                     headers={"x-functions-key": host.master_key}, timeout=10)
    r.raise_for_status()
    return r.json()["metrics"]


def _delta(after: dict, before: dict) -> dict:  # type: ignore[type-arg]
    out: dict = {}  # type: ignore[type-arg]
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = _delta(value, before.get(key) or {})
        elif isinstance(value, int | float):
            out[key] = value - (before.get(key) or 0)
    return out


def bill(delta: dict, tasks: int, log_appends: float, cpu_ms: float) -> dict:  # type: ignore[type-arg]
    """Per-task operation counts on Azure and their list price per 1,000 tasks.

    Counted by the local host while the saturated phase ran, divided by its tasks:

    - function executions: HTTP, Service Bus and timer triggers and activities (host
      invocations) plus orchestrator episodes (each episode is one orchestrator
      execution on Azure; replays are billed on Consumption plans);
    - Service Bus operations: send, receive and complete of each message (session
      accepts and empty receives are not counted: a floor);
    - SignalR: REST publishes (free, inbound) and outbound messages per *watching page*:
      each publish to a group reaches every page in it and is billed once per page (the
      estimate takes a page in both groups of the task, so every publish reaches it);
    - Durable on the Azure Storage provider: each history event is a row written in one
      batch per episode (one table transaction per episode for history, one for the
      instance row), each message is a queue put, get and delete;
    - task log appends: a head read plus one entity-group transaction in Table storage;
    - Durable Task Scheduler (the backend host.json chooses): its billed *actions*, each
      message dispatched to the app plus each activity started. Counted, not priced: its
      Consumption price per action is on the pricing page only, which this bench's
      author could not read; the storage line above is what the Azure Storage provider
      would cost instead.
    """
    ex = delta.get("executions", {})
    durable = delta.get("durable", {})
    sb = delta.get("servicebus", {})
    sr = delta.get("signalr", {})
    orchestrator_runs = durable.get("episodes", 0)
    executions = sum(v for k, v in ex.items() if k != "orchestrationTrigger") \
        + orchestrator_runs
    sb_ops = sum(e.get("sent", 0) + 2 * e.get("completed", 0) for e in sb.values())
    per = {
        "function_executions": executions / tasks,
        "http_executions": ex.get("httpTrigger", 0) / tasks,
        "orchestrator_episodes": orchestrator_runs / tasks,
        "activity_executions": ex.get("activityTrigger", 0) / tasks,
        "servicebus_operations": sb_ops / tasks,
        "signalr_rest_publishes": sr.get("rest_publishes", 0) / tasks,
        "durable_history_events": durable.get("history_events", 0) / tasks,
        "durable_messages": durable.get("messages", 0) / tasks,
        # what the Durable Task Scheduler bills: each message dispatched to the app (start,
        # activity result, timer, event) and each activity started
        "durable_task_scheduler_actions": (durable.get("messages", 0)
                                           + durable.get("activity_runs", 0)) / tasks,
        "log_appends": log_appends,
    }
    table_tx = 2 * per["orchestrator_episodes"] + 2 * per["log_appends"]
    queue_ops = 3 * per["durable_messages"]
    gb_s = cpu_ms / 1000 * INSTANCE_GB  # busy time ~ host CPU per task (a floor)
    cost = {
        "functions": per["function_executions"] * PRICES[
            "functions_flex_per_million_executions"] / 1e6
        + gb_s * PRICES["functions_flex_per_gb_s"],
        "servicebus": per["servicebus_operations"] * PRICES[
            "servicebus_standard_per_million_ops"] / 1e6,
        "storage": table_tx * PRICES["storage_table_per_10k_transactions"] / 1e4
        + queue_ops * PRICES["storage_queue_per_10k_operations"] / 1e4,
        # one watching page: every publish it receives is an outbound message
        "signalr_per_watching_page": per["signalr_rest_publishes"] * PRICES[
            "signalr_per_million_messages"] / 1e6,
    }
    return {"per_task": {k: round(v, 2) for k, v in per.items()},
            "table_transactions_per_task": round(table_tx, 2),
            "queue_operations_per_task": round(queue_ops, 2),
            "usd_per_1000_tasks": {k: round(v * 1000, 4) for k, v in cost.items()},
            "usd_per_1000_tasks_total": round(sum(cost.values()) * 1000, 4),
            "prices": PRICES, "prices_date": PRICES_DATE}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each live child process of ``pid`` (the worker processes)."""
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            try:
                out[child] = cpu_seconds(child)
            except OSError:  # ended meanwhile
                continue
    return out


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of process ``pid`` (thread id -> user + system)."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--paced-rate", type=float, default=10.0,
                        help="tasks/s for the latency phase (below saturation)")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2,
                        help="FUNCTIONS_WORKER_PROCESS_COUNT for the host (1: in-process)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a py-spy breakdown of the saturated phase here")
    args = parser.parse_args()

    admin_url, name = create_throwaway_database("cloudops_bench_e2e")
    url = with_database(admin_url, name)
    host = start_host(url, Path(tempfile.mkdtemp()),
                      env={"FUNCTIONS_WORKER_PROCESS_COUNT": str(args.workers)})
    try:
        session = host.session("bench", ("admin",))
        project = f"bench-{uuid.uuid4().hex[:6]}"
        session.post(host.url("/api/projects"), json={"slug": project, "name": "Bench"})
        envs = [f"e{i}" for i in range(args.environments)]
        for env in envs:
            session.post(host.url(f"/api/projects/{project}/environments"),
                         json={"slug": env, "name": env, "target": {"type": "noop"}})
        # warm-up: every environment once
        _submit_all(host, project, envs, len(envs), args.concurrency)
        _wait_done(url, len(envs))

        counts_before = metrics(host)
        cpu_before = cpu_seconds(host.proc.pid)
        workers_before = children_cpu_seconds(host.proc.pid)
        pg_before = _server_cpu()
        xacts_before = _transactions(url)
        client_before = time.process_time()
        loop_before = thread_cpu_seconds(host.proc.pid).get(host.proc.pid, 0.0)
        spy = _start_profile(host.proc.pid, args.profile) if args.profile else None
        started = time.perf_counter()
        ids = _submit_all(host, project, envs, args.tasks, args.concurrency)
        submitted = time.perf_counter() - started
        _wait_done(url, len(envs) + args.tasks)
        if spy is not None:
            _stop_profile(spy, args.profile)
        # The app publishes from a background queue: the tasks are terminal before all
        # their events have left. Wait until the publish count settles, so the counts and
        # the CPU include publishing, and report how far publishing lagged.
        terminal_at = time.perf_counter()
        settled = metrics(host)
        while time.perf_counter() - terminal_at < 120:
            time.sleep(1.0)
            now_counts = metrics(host)
            if now_counts.get("signalr") == settled.get("signalr"):
                break
            settled = now_counts
        publish_lag = time.perf_counter() - terminal_at - 1.0
        host_cpu_ms = (cpu_seconds(host.proc.pid) - cpu_before) * 1000 / args.tasks
        client_cpu_ms = (time.process_time() - client_before) * 1000 / args.tasks
        pg_after = _server_cpu()
        xacts = (_transactions(url) - xacts_before) / args.tasks
        pg_cpu_ms = None if pg_before is None or pg_after is None \
            else (pg_after - pg_before) * 1000 / args.tasks
        workers_after = children_cpu_seconds(host.proc.pid)
        workers_cpu_ms = sum(workers_after.get(pid, 0.0) - before for pid, before
                             in workers_before.items()) * 1000 / args.tasks
        workers_cpu_ms += sum(v for pid, v in workers_after.items()
                              if pid not in workers_before) * 1000 / args.tasks
        # the main thread runs the event loop: aiohttp, the emulations, the Durable engine,
        # async functions; the other threads run sync functions (activities, HTTP
        # functions), the publisher lanes and psycopg's pool
        loop_cpu_ms = (thread_cpu_seconds(host.proc.pid).get(host.proc.pid, 0.0)
                       - loop_before) * 1000 / args.tasks
        counts = _delta(settled, counts_before)
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT status, extract(epoch FROM finished_at - created_at) * 1000,"
                " created_at, finished_at FROM tasks WHERE id = ANY(%s)",
                ([uuid.UUID(i) for i in ids],)).fetchall()
            appends = conn.execute(
                "SELECT count(DISTINCT (task_id, at)) FROM task_log_lines"
                " WHERE task_id = ANY(%s)", (list(ids),)).fetchone()[0]
        latencies = [float(r[1]) for r in rows]
        span = (max(r[3] for r in rows) - min(r[2] for r in rows)).total_seconds()
        statuses = {r[0] for r in rows}
        # Latency when not saturated: one task every 1/rate seconds, round-robin envs.
        paced_ids = _submit_paced(host, project, envs, args.paced_rate, args.paced_seconds)
        _wait_done(url, len(envs) + args.tasks + len(paced_ids))
        with psycopg.connect(url) as conn:
            paced = [float(r[0]) for r in conn.execute(
                "SELECT extract(epoch FROM finished_at - created_at) * 1000 FROM tasks"
                " WHERE id = ANY(%s)", ([uuid.UUID(i) for i in paced_ids],)).fetchall()]
    finally:
        stop_host(host)
    baseline = commit_rate(url, args.concurrency)
    drop_database(admin_url, name)

    tasks_per_s = args.tasks / span
    figures = {
        "bench": "e2e", "tasks": args.tasks, "environments": args.environments,
        "tasks_per_s": round(tasks_per_s, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "submit_per_s": round(args.tasks / submitted, 1),
        "paced_rate_per_s": args.paced_rate,
        "paced_p50_ms": round(statistics.median(paced), 1),
        "paced_p99_ms": round(percentile(paced, 99), 1),
        "worker_processes": args.workers,
        "cpu_ms_per_task": round(host_cpu_ms + workers_cpu_ms, 1),
        "host_cpu_ms_per_task": round(host_cpu_ms, 1),
        "workers_cpu_ms_per_task": round(workers_cpu_ms, 1),
        "event_loop_cpu_ms_per_task": round(loop_cpu_ms, 1),
        # the rest of what one task costs the machine: the Postgres server and this bench
        # (its HTTP clients and polling); the sum bounds tasks/s at cores * 1000 / sum
        "pg_cpu_ms_per_task": None if pg_cpu_ms is None else round(pg_cpu_ms, 1),
        "bench_client_cpu_ms_per_task": round(client_cpu_ms, 1),
        "machine_cpu_ms_per_task": None if pg_cpu_ms is None else round(
            host_cpu_ms + workers_cpu_ms + pg_cpu_ms + client_cpu_ms, 1),
        "cpu_bound_tasks_per_s": None if pg_cpu_ms is None else round(
            (os.cpu_count() or 1) * 1000
            / (host_cpu_ms + workers_cpu_ms + pg_cpu_ms + client_cpu_ms), 1),
        "publish_lag_s": round(max(0.0, publish_lag), 1),
        # committed transactions per task in the app's database (the app's and the
        # Durable store's; the bench's polling adds ~0.1): what merging transactions cuts
        "pg_transactions_per_task": round(xacts, 1),
        "pg_commits_per_s": round(baseline, 1),
        "commits_budget_per_task": round(baseline / tasks_per_s, 1),
        "all_succeeded": statuses == {"succeeded"},
    }
    print(f"{'metric':<28}{'value':>12}")
    for key in ("tasks_per_s", "p50_ms", "p99_ms", "submit_per_s", "paced_rate_per_s",
                "paced_p50_ms", "paced_p99_ms", "worker_processes", "cpu_ms_per_task",
                "host_cpu_ms_per_task", "workers_cpu_ms_per_task",
                "event_loop_cpu_ms_per_task", "pg_cpu_ms_per_task",
                "bench_client_cpu_ms_per_task", "machine_cpu_ms_per_task",
                "cpu_bound_tasks_per_s", "publish_lag_s", "pg_transactions_per_task",
                "pg_commits_per_s",
                "commits_budget_per_task"):
        print(f"{key:<28}{figures[key]!s:>12}")
    print(f"targets: tasks_per_s >= 100, p50_ms < 50; statuses {sorted(statuses)}")
    figures["azure_bill"] = bill(counts, args.tasks, appends / args.tasks,
                                 host_cpu_ms + workers_cpu_ms)
    print("Azure bill per task (counted on the local host, list prices of "
          f"{PRICES_DATE}):")
    for key, value in figures["azure_bill"]["per_task"].items():
        print(f"  {key:<30}{value:>10}")
    for key, value in figures["azure_bill"]["usd_per_1000_tasks"].items():
        print(f"  USD per 1,000 tasks: {key:<28}{value:>10.4f}")
    figures["load_average"] = round(os.getloadavg()[0], 2)
    print(f"load average {figures['load_average']} (2 cores, shared)")
    print(json.dumps(figures))
    return 0


# Where a sampled stack belongs: walking from the innermost frame outwards, the first frame
# whose file matches a rule names the part (so a library call counts for the code that made
# it, and shared/ code for the function that called it); stacks with none of these frames
# are the host's own dispatch or the event loop.
PARTS = (
    ("SignalR emulation (REST handler, fan-out)", r"^localhost/signalr/(?!cors)"),
    ("SignalR publishing, app side (publisher thread, REST client)",
     r"^shared/realtime/publisher|^shared/realtime/"),
    ("Durable Postgres store", r"^localhost/durable/pg_store"),
    ("Durable client -> engine (SDK client, HTTP API)",
     r"^localhost/durable/(http_api|operations)|^azure/durable_functions/models/"
     r"DurableOrchestrationClient"),
    ("Durable engine and SDK replay", r"^localhost/durable/|^azure/durable_functions/"),
    ("Service Bus emulation and trigger", r"^localhost/servicebus|^functions/task_queue"),
    ("activities and orchestrators of the app", r"^functions/(activities|orchestrators)/"),
    ("HTTP functions (POST deployments)", r"^functions/"),
)
HOST = "aiohttp server and host dispatch"
OTHER = "event loop, selectors, threads, other"


def _part(files: list[str]) -> str:
    for path in reversed(files):
        for name, pattern in PARTS:
            if re.search(pattern, path):
                return name
    return HOST if any(f.startswith(("localhost/", "aiohttp/")) for f in files) else OTHER


def _start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    raw = out.with_suffix(".raw")
    return subprocess.Popen([str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid",
                             str(pid), "--subprocesses", "--gil", "--rate", "200",
                             "--format", "raw",
                             "--output", str(raw)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_profile(spy: subprocess.Popen[bytes], out: Path) -> None:
    import signal

    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)
    counts: dict[str, int] = {}
    total = 0
    for line in out.with_suffix(".raw").read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        part = _part(re.findall(r"\(([^():]+):\d+\)", stack))
        counts[part] = counts.get(part, 0) + int(n)
        total += int(n)
    lines = [f"{100 * n / total:5.1f} %  {part}"
             for part, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    out.write_text(f"py-spy --gil samples: {total}\n" + "\n".join(lines) + "\n")
    print(out.read_text())


def _submit_all(host, project: str, envs: list[str], count: int,  # type: ignore[no-untyped-def]
                concurrency: int) -> list[str]:
    """POST ``count`` deploys from ``concurrency`` threads over warm keep-alive connections
    (``shared.httpclient.KeepAlivePool``): the load generator shares the 2 cores with what
    it measures, and requests' sessions cost it about twice the CPU per call."""
    from localhost.easyauth import COOKIE, principal_cookie
    from shared.httpclient import KeepAlivePool

    client = KeepAlivePool(host.url(""), size=concurrency, read_timeout=60)
    headers = {"Cookie": f"{COOKIE}={principal_cookie('bench', 'bench@example.com', ['admin'])}",
               "Content-Type": "application/json"}

    def submit(i: int) -> str:
        env = envs[i % len(envs)]
        reply = client.request("POST", f"/api/projects/{project}/environments/{env}/deployments",
                               headers, json.dumps({"version": f"1.0.{i}"}).encode())
        if reply.status != 202:
            raise SystemExit(f"POST deployments answered {reply.status}: {reply.body[:300]!r}")
        return str(json.loads(reply.body)["id"])

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(submit, range(count)))
    finally:
        client.close()


def _submit_paced(host, project: str, envs: list[str], rate: float,  # type: ignore[no-untyped-def]
                  seconds: float) -> list[str]:
    session = host.session("bench", ("admin",))
    ids: list[str] = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        r = session.post(host.url(f"/api/projects/{project}/environments/"
                                  f"{envs[i % len(envs)]}/deployments"), json={"version": "p"})
        r.raise_for_status()
        ids.append(str(r.json()["id"]))
    return ids


def _transactions(url: str) -> int:
    """Transactions committed in the app's database so far (pg_stat_database; backends
    report theirs within a second, so read after the run has settled)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database"
                           " WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def _wait_done(url: str, total: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            done = conn.execute("SELECT count(*) FROM tasks WHERE finished_at IS NOT NULL"
                                ).fetchone()[0]
            if done >= total:
                return
            time.sleep(0.2)
    raise SystemExit(f"only {done} of {total} tasks finished in {timeout}s")


if __name__ == "__main__":
    requests.packages.urllib3.disable_warnings()  # type: ignore[attr-defined]
    raise SystemExit(main())
