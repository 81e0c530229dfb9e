"""A host process for the restart test: runs ``slow_steps`` on the Postgres store.

``python restart_host.py DATABASE_URL MARKER start|resume INSTANCE_ID STEPS`` starts (or
only resumes) the orchestration, prints its output as JSON when it completes and exits.
Each activity appends ``start i`` / ``done i`` lines to MARKER so the test can see which
steps ran and how often.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import azure.durable_functions as df
import azure.functions as func

from localhost.durable.catalog import direct_invoker, functions_from_app
from localhost.durable.engine import Engine
from localhost.durable.pg_store import PostgresStore


def make_app(marker: str) -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    def note(line: str) -> None:
        with open(marker, "a") as f:
            f.write(line + "\n")

    @app.activity_trigger(input_name="i")
    def step(i: int) -> int:
        note(f"start {i}")
        time.sleep(0.15)
        note(f"done {i}")
        return i * i

    @app.orchestration_trigger(context_name="context")
    def slow_steps(context: df.DurableOrchestrationContext):
        results = []
        for i in range(context.get_input()):
            results.append((yield context.call_activity("step", i)))
        return results

    return app


async def main(url: str, marker: str, mode: str, iid: str, steps: int) -> None:
    engine = Engine(functions_from_app(make_app(marker)), direct_invoker(), PostgresStore(url))
    await engine.start()
    if mode == "start":
        await engine.start_new("slow_steps", iid, json.dumps(steps))
    inst = await engine.wait_for(iid, 60)
    print(json.dumps({"status": inst.status, "output": json.loads(inst.output or "null")}),
          flush=True)
    await engine.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
