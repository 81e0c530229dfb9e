"""The long-poll waiter's fan-out rules, without a database: one notification wakes one
waiter that can take the job (the longest waiting), and a wake-up is never lost."""

from __future__ import annotations

import asyncio
import json

from shared.agents.waiter import JobWaiter
from tests.waiting import async_wait_until


def _notify(pool: str, demands: list[str]) -> str:
    return json.dumps({"pool": pool, "demands": demands, "job": "j"})


def test_a_notification_wakes_one_capable_waiter_most_recent_poll_first() -> None:
    # the poll held longest is the likeliest to be dead (cut by a proxy, its agent gone)
    async def scenario() -> None:
        waiter = JobWaiter("unused", listen=False)
        plain = waiter.register("p1", ["linux"])
        first = waiter.register("p1", ["linux", "pg"])
        second = waiter.register("p1", ["linux", "pg"])
        other_pool = waiter.register("p2", ["linux", "pg"])
        waiter.handle(_notify("p1", ["pg"]))
        assert [w.event.is_set() for w in (plain, first, second, other_pool)] == [
            False, False, True, False]
        waiter.handle(_notify("p1", ["pg"]))
        assert first.event.is_set() and not plain.event.is_set()
        assert waiter.waiting == 4

    asyncio.run(scenario())


def test_a_woken_waiter_that_leaves_without_claiming_passes_the_wake_on() -> None:
    async def scenario() -> None:
        waiter = JobWaiter("unused", listen=False)
        next_in_line = waiter.register("p", [])
        gone = waiter.register("p", [])
        waiter.handle(_notify("p", []))
        assert gone.event.is_set() and not next_in_line.event.is_set()
        waiter.unregister(gone)  # e.g. its HTTP request was cancelled
        assert next_in_line.event.is_set()

    asyncio.run(scenario())


def test_next_job_claims_after_a_wake_and_times_out_empty() -> None:
    async def scenario() -> None:
        waiter = JobWaiter("unused", listen=False)
        jobs: list[str] = []

        async def claim() -> str | None:
            return jobs.pop() if jobs else None

        assert await waiter.next_job("p", [], 0.05, claim) is None
        poll = asyncio.create_task(waiter.next_job("p", ["pg"], 30, claim))
        await async_wait_until(lambda: waiter.waiting == 1, "the poll to be waiting")
        jobs.append("job-1")
        waiter.handle(_notify("p", ["pg"]))
        assert await asyncio.wait_for(poll, 5) == "job-1"
        assert waiter.waiting == 0

    asyncio.run(scenario())


def test_a_bare_pool_payload_still_wakes_a_waiter() -> None:
    async def scenario() -> None:
        waiter = JobWaiter("unused", listen=False)
        w = waiter.register("pool-id", ["x"])
        waiter.handle("pool-id")
        assert w.event.is_set()

    asyncio.run(scenario())
