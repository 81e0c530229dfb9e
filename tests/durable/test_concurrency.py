"""Concurrency: many instances at once, one episode per instance, bounded activities."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import azure.durable_functions as df
import azure.functions as func

from localhost.durable.catalog import direct_invoker, functions_from_app
from localhost.durable.engine import Engine
from tests.durable.apps import actions_app
from tests.durable.harness import outputs


def run(coro):
    return asyncio.run(coro)


def test_many_instances_run_at_once_and_never_two_episodes_of_one() -> None:
    async def main():
        engine = Engine(functions_from_app(actions_app.make_app()), direct_invoker(),
                        extended_sessions=False)
        active: Counter[str] = Counter()
        overlaps: list[str] = []
        most_at_once = 0
        original = engine._run

        async def watched(inst, events):
            nonlocal most_at_once
            active[inst.instance_id] += 1
            if active[inst.instance_id] > 1:
                overlaps.append(inst.instance_id)
            most_at_once = max(most_at_once, sum(1 for v in active.values() if v))
            try:
                await asyncio.sleep(0)  # give every other driver a chance to interleave
                return await original(inst, events)
            finally:
                active[inst.instance_id] -= 1

        engine._run = watched  # type: ignore[method-assign]
        await engine.start()
        try:
            ids = [await engine.start_new("fan_out", f"many-{i}", json.dumps(20))
                   for i in range(30)]
            done = await asyncio.gather(*(engine.wait_for(i, 30) for i in ids))
        finally:
            await engine.stop()
        assert [outputs(d) for d in done] == [380] * 30
        assert overlaps == []
        assert most_at_once > 1  # instances really did run side by side
    run(main())


def _slow_app(state: dict) -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    lock = threading.Lock()

    @app.activity_trigger(input_name="n")
    def slow(n: int) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return n

    @app.orchestration_trigger(context_name="context")
    def spread(context: df.DurableOrchestrationContext):
        results = yield context.task_all([context.call_activity("slow", i) for i in range(24)])
        return sum(results)

    return app


def test_activity_concurrency_is_bounded_by_the_pool_size() -> None:
    state = {"now": 0, "peak": 0}

    async def main():
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=16)
        engine = Engine(functions_from_app(_slow_app(state)), direct_invoker(pool),
                        max_activities=3)
        await engine.start()
        try:
            iid = await engine.start_new("spread")
            inst = await engine.wait_for(iid, 30)
        finally:
            await engine.stop()
            pool.shutdown()
        assert outputs(inst) == sum(range(24))
    run(main())
    assert 1 < state["peak"] <= 3
