"""Task-log store throughput: appends/s and reads/s for the Postgres and Table stores.

Workloads (same run, 4 writer threads):
- baseline: raw Postgres single-row INSERT + COMMIT (the physical limit of a durable append);
- postgres: ``PostgresLogStore.append`` of one line, writers on different tasks and all on
  the same task (contention on the task's sequence row), and batches of 20 lines;
- read: ``read(after=..., limit=100)`` calls/s on a 5,000-line log;
- table: ``TableLogStore.append`` against Azurite (different tasks / same task: optimistic
  concurrency retries), if node_modules has azurite.
Prints a table and one JSON line. Usage: ./bench.sh logs [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from shared.db import Database, apply_migrations  # noqa: E402
from shared.logs import LogStore  # noqa: E402
from shared.logs._postgres import PostgresLogStore  # noqa: E402
from shared.logs._table import TableLogStore  # noqa: E402
from tests.conftest import create_throwaway_database, drop_database, with_database  # noqa: E402

THREADS = 4


def rate(seconds: float, work: Callable[[int], int]) -> float:
    """Run ``work(thread_index)`` in a loop on THREADS threads for ``seconds``; ops/s."""
    stop = time.perf_counter() + seconds
    counts = [0] * THREADS

    def loop(i: int) -> None:
        while time.perf_counter() < stop:
            counts[i] += work(i)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def baseline(url: str, seconds: float) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commits (id bigserial, t text)")
    conns = [psycopg.connect(url, autocommit=True) for _ in range(THREADS)]

    def insert(i: int) -> int:
        conns[i].execute("INSERT INTO bench_commits (t) VALUES ('x')")
        return 1

    try:
        return rate(seconds, insert)
    finally:
        for c in conns:
            c.close()


def store_rates(store: LogStore, seconds: float) -> dict[str, float]:
    tasks = [str(uuid.uuid4()) for _ in range(THREADS)]
    shared = str(uuid.uuid4())
    out = {
        "appends_per_s": rate(seconds, lambda i: len(store.append(tasks[i], ["line"]))) ,
        "same_task_appends_per_s": rate(seconds, lambda i: len(store.append(shared, ["l"]))),
    }
    batch = ["x" * 80] * 20
    out["lines_per_s_batch20"] = rate(seconds, lambda i: len(store.append(tasks[i], batch)))
    return out


def read_rate(store: LogStore, seconds: float) -> float:
    task = str(uuid.uuid4())
    for _ in range(50):
        store.append(task, ["y" * 80] * 100)
    return rate(seconds, lambda i: len(store.read(task, after=(i * 997) % 4900, limit=100))
                and 1)


def table_rates(seconds: float) -> dict[str, float] | None:
    from tests.azure.conftest import Azurite, _run_azurite

    if not (ROOT / "node_modules" / ".bin" / "azurite").exists():
        return None
    workspace = Path(tempfile.mkdtemp(prefix="azurite-bench-"))
    try:
        with _run_azurite([], workspace) as (blob, table):
            store = TableLogStore.from_connection_string(
                Azurite(blob, table).connection_string, "benchlogs")
            result = store_rates(store, seconds)
            store.close()
            return result
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    admin, name = create_throwaway_database("cloudops_bench_logs")
    url = with_database(admin, name)
    try:
        apply_migrations(url)
        base = baseline(url, args.seconds)
        db = Database(url, max_size=THREADS + 1).open()
        pg = store_rates(PostgresLogStore(db), args.seconds)
        reads = read_rate(PostgresLogStore(db), args.seconds)
        db.close()
    finally:
        drop_database(admin, name)
    table = table_rates(args.seconds)

    rows = [("baseline: raw INSERT+COMMIT", base, "commits/s"),
            ("postgres append (1 line, own task)", pg["appends_per_s"], "appends/s"),
            ("postgres append (1 line, same task)", pg["same_task_appends_per_s"], "appends/s"),
            ("postgres append (20-line batches)", pg["lines_per_s_batch20"], "lines/s"),
            ("postgres read (100 lines)", reads, "reads/s")]
    if table:
        rows += [("table append (1 line, own task)", table["appends_per_s"], "appends/s"),
                 ("table append (1 line, same task)", table["same_task_appends_per_s"],
                  "appends/s"),
                 ("table append (20-line batches)", table["lines_per_s_batch20"], "lines/s")]
    print(f"{'workload':<40} {'rate':>12}  unit   ({THREADS} threads)")
    for label, value, unit in rows:
        print(f"{label:<40} {value:>12,.0f}  {unit}")
    figures = {"bench": "logs", "baseline_commits_per_s": round(base),
               "pg_appends_per_s": round(pg["appends_per_s"]),
               "pg_same_task_appends_per_s": round(pg["same_task_appends_per_s"]),
               "pg_lines_per_s_batch20": round(pg["lines_per_s_batch20"]),
               "pg_reads_per_s": round(reads),
               "ratio": round(pg["appends_per_s"] / base, 2)}
    if table:
        figures.update({"table_appends_per_s": round(table["appends_per_s"]),
                        "table_same_task_appends_per_s": round(
                            table["same_task_appends_per_s"])})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
