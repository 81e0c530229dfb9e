"""Soak: the fault suite's kills, heavier and longer, with figures.

On the real local host (``cloudops local``) and a throwaway database of the configured
Postgres (``DATABASE_URL``, else the embedded one):

- ``--runs`` (40) seeded runs of the host-kill fault (see ``tests/faults/test_host_kills``)
  with 5-10 operations each (noop deploys and agent-run scripts): submit, kill -9 at a
  random point, restart, settle (sweeper fired), then check that every accepted task is
  terminal with a reason, has exactly one terminal transition, and that no script job was
  claimed twice. The time from the kill until all are terminal (the host's restart
  included) is the recovery time.
- same-run baseline: ``--baseline-runs`` (10) runs of the same plans without the kill;
  their settle time is the baseline for the ratio.
- ``--cuts`` (3) Postgres cuts of 12 s through a TCP proxy under a steady deploy load
  (see ``tests/faults/test_postgres_cut``): 503s seen, connection errors, tasks lost.

Usage: ./bench.sh soak [--runs 40] [--baseline-runs 10] [--cuts 3]
Prints a table and one JSON line; exits 1 if any invariant broke.
"""

from __future__ import annotations

import argparse
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

from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from tests.conftest import (  # noqa: E402
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.faults._harness import (  # noqa: E402
    FAST,
    job_claims,
    kill,
    make_env,
    restart_host,
    settle,
    terminal_transitions,
)
from tests.faults.test_host_kills import Submitter, _setup  # noqa: E402
from tests.faults.test_postgres_cut import Load  # noqa: E402
from tests.tcp_proxy import TcpProxy  # noqa: E402


def plan(rng: random.Random, noop: list[str], scripted: str, run: int
         ) -> list[tuple[str, dict[str, Any]]]:
    steps: list[tuple[str, dict[str, Any]]] = []
    for i in range(rng.randint(5, 10)):
        if rng.random() < 0.3:
            steps.append((f"/api/projects/{scripted}/environments/dev/scripts/touch/runs",
                          {"parameters": {}}))
        else:
            steps.append((f"/api/projects/{rng.choice(noop)}/environments/dev/deployments",
                          {"version": f"{run}.{i}"}))
    return steps


def check(database: str, accepted: list[tuple[str, str]], tasks: dict[str, Any]) -> list[str]:
    ids = [task_id for task_id, _ in accepted]
    problems = [f"task {i} has no reason" for i, t in tasks.items() if not t["reason"]]
    problems += [f"task {i}: {n} terminal transitions"
                 for i, n in terminal_transitions(database, ids).items() if n != 1]
    scripts = [task_id for task_id, kind in accepted if kind == "script"]
    problems += [f"script task {i} claimed {n} times"
                 for i, n in job_claims(database, scripts).items() if n > 1]
    return problems


def kills(args: argparse.Namespace) -> dict[str, Any]:
    admin, name = create_throwaway_database("cloudops_soak")
    database = with_database(admin, name)
    host = start_host(database, Path(tempfile.mkdtemp(prefix="soak-")), env=FAST)
    agent = None
    recoveries: list[float] = []
    baselines: list[float] = []
    problems: list[str] = []
    accepted = outcomes_failed = 0
    try:
        agent, noop, scripted = _setup(host)
        for run in range(args.baseline_runs + args.runs):
            rng = random.Random(9000 + run)
            baseline = run < args.baseline_runs
            submitter = Submitter(host, plan(rng, noop, scripted, run),
                                  pause=rng.uniform(0.0, 0.1))
            submitter.thread.start()
            if baseline:
                submitter.thread.join()
                started = time.monotonic()
            else:
                time.sleep(rng.uniform(0.0, 1.5))
                kill(host)
                started = time.monotonic()  # recovery includes the host's restart
                submitter.thread.join(timeout=15)
                host = restart_host(host)
                agent.base_url = host.base_url
            tasks = settle(host, [t for t, _ in submitter.accepted], timeout=90)
            (baselines if baseline else recoveries).append(time.monotonic() - started)
            accepted += len(tasks)
            outcomes_failed += sum(1 for t in tasks.values() if t["status"] != "succeeded")
            problems += check(database, submitter.accepted, tasks)
    finally:
        if agent is not None:
            agent.stop()
        stop_host(host)
        drop_database(admin, name)
    return {"recoveries": recoveries, "baselines": baselines, "problems": problems,
            "accepted": accepted, "not_succeeded": outcomes_failed}


def cuts(args: argparse.Namespace) -> dict[str, Any]:
    admin, name = create_throwaway_database("cloudops_soak_pg")
    direct = conninfo_to_dict(with_database(admin, name))
    proxy = TcpProxy(str(direct.get("host") or "127.0.0.1"), int(direct.get("port") or 5432))
    host = start_host(make_conninfo(**{**direct, "host": "127.0.0.1", "port": str(proxy.port)}),
                      Path(tempfile.mkdtemp(prefix="soak-pg-")), env=FAST)
    try:
        admin_http = host.session("alice", ("admin",))
        load = Load(host, [make_env(admin_http, host)[0] for _ in range(5)])
        load.thread.start()
        for _ in range(args.cuts):
            time.sleep(3)
            proxy.cut()
            time.sleep(12)
            proxy.restore()
        time.sleep(3)
        load.stop.set()
        load.thread.join(60)
        tasks = settle(host, load.accepted, timeout=120)
        codes = [c for c, _ in load.statuses]
        return {"requests": len(codes), "503": codes.count(503), "conn_errors": codes.count(0),
                "other_5xx": sum(1 for c in codes if c >= 500 and c != 503),
                "missing_retry_after": sum(1 for c, r in load.statuses if c == 503 and not r),
                "accepted": len(tasks),
                "not_terminal": sum(1 for t in tasks.values() if not t["reason"])}
    finally:
        proxy.restore()
        stop_host(host)
        proxy.close()
        drop_database(admin, name)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--cuts", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    k = kills(args)
    c = cuts(args) if args.cuts else {}
    rec, base = k["recoveries"], k["baselines"]
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores, shared); "
          f"{time.monotonic() - started:.0f} s")
    print(f"{'fault':<34}{'runs':>6}{'tasks':>7}{'p50 s':>8}{'max s':>8}{'broken':>8}")
    print(f"{'no kill (baseline settle)':<34}{len(base):>6}{'':>7}{pct(base, .5):>8.2f}"
          f"{max(base, default=0):>8.2f}{'':>8}")
    print(f"{'kill -9 host → all terminal':<34}{len(rec):>6}{k['accepted']:>7}"
          f"{pct(rec, .5):>8.2f}{max(rec, default=0):>8.2f}{len(k['problems']):>8}")
    if c:
        print(f"Postgres cut 12 s x {args.cuts}: {c['requests']} requests, {c['503']} x 503 "
              f"(Retry-After missing on {c['missing_retry_after']}), other 5xx "
              f"{c['other_5xx']}, connection errors {c['conn_errors']}, {c['accepted']} "
              f"tasks accepted, {c['not_terminal']} not terminal")
    for problem in k["problems"][:20]:
        print("  broken:", problem)
    broken = len(k["problems"]) + (c.get("other_5xx", 0) + c.get("conn_errors", 0)
                                   + c.get("missing_retry_after", 0) + c.get("not_terminal", 0)
                                   if c else 0)
    result = {"bench": "soak", "kill_runs": len(rec), "tasks": k["accepted"],
              "tasks_not_succeeded": k["not_succeeded"],
              "recovery_p50_s": round(pct(rec, .5), 2), "recovery_max_s": round(max(rec), 2),
              "baseline_settle_p50_s": round(pct(base, .5), 2),
              "ratio": round(pct(rec, .5) / pct(base, .5), 2) if base else None,
              "invariant_violations": len(k["problems"]),
              "pg_cuts": args.cuts, "pg_503": c.get("503"), "pg_other_5xx": c.get("other_5xx"),
              "pg_connection_errors": c.get("conn_errors"), "pg_tasks": c.get("accepted"),
              "broken": broken, "load_average": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
