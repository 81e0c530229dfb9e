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
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    args = parser.parse_args()

    admin_url, name = create_throwaway_database("cloudops_bench_e2e")
    url = with_database(admin_url, name)
    host = start_host(url, Path(tempfile.mkdtemp()))
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

        started = time.perf_counter()
        ids = _submit_all(host, project, envs, args.tasks, args.concurrency)
        submitted = time.perf_counter() - started
        _wait_done(url, len(envs) + args.tasks)
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT status, extract(epoch FROM finished_at - created_at) * 1000,"
                " created_at, finished_at FROM tasks WHERE id = ANY(%s)",
                ([uuid.UUID(i) for i in ids],)).fetchall()
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
        "pg_commits_per_s": round(baseline, 1),
        "commits_budget_per_task": round(baseline / tasks_per_s, 1),
        "all_succeeded": statuses == {"succeeded"},
    }
    print(f"{'metric':<28}{'value':>12}")
    for key in ("tasks_per_s", "p50_ms", "p99_ms", "submit_per_s", "paced_rate_per_s",
                "paced_p50_ms", "paced_p99_ms", "pg_commits_per_s", "commits_budget_per_task"):
        print(f"{key:<28}{figures[key]:>12}")
    print(f"targets: tasks_per_s >= 100, p50_ms < 50; statuses {sorted(statuses)}")
    print(json.dumps(figures))
    return 0


def _submit_all(host, project: str, envs: list[str], count: int,  # type: ignore[no-untyped-def]
                concurrency: int) -> list[str]:
    sessions = [host.session("bench", ("admin",)) for _ in range(concurrency)]

    def submit(i: int) -> str:
        s = sessions[i % concurrency]
        env = envs[i % len(envs)]
        r = s.post(host.url(f"/api/projects/{project}/environments/{env}/deployments"),
                   json={"version": f"1.0.{i}"})
        r.raise_for_status()
        return str(r.json()["id"])

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(submit, range(count)))


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
