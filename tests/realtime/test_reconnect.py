"""Reconnect misses nothing: a client that drops, reconnects, re-joins and re-reads the log
after its last seen sequence number ends with every line exactly once, in order.

Events are hints; the log store is the truth (``GET /api/tasks/{id}/logs?after=`` reads
the same store). The client joins first and re-reads second, and drops lines at or below
its last seq, so a line published between the two shows once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from shared.logs import MemoryLogStore
from shared.realtime import RestRealtime
from shared.realtime.events import publish_task_log, task_group
from tests.realtime._client import HubClient
from tests.realtime.test_emulation import connect, run

TASK = "2b1f3c1e-0000-4000-8000-000000000001"
PROJECT = "2b1f3c1e-0000-4000-8000-0000000000ff"


class LogFollower:
    """What the web UI does with ``taskLog`` events and the log API."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def take(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            if line["seq"] > self.last:
                assert line["seq"] == self.last + 1, f"gap before {line['seq']}"
                self.seqs.append(line["seq"])


def test_client_that_drops_and_reconnects_misses_no_log_line(rest: RestRealtime) -> None:
    store = MemoryLogStore()

    def write(n: int) -> None:
        stored = store.append(TASK, [f"line {i}" for i in range(n)])
        publish_task_log(rest, TASK, PROJECT, stored)

    async def drain(client: HubClient, follower: LogFollower, until: int) -> None:
        while follower.last < until:
            target, args = await client.next()
            assert target == "taskLog"
            follower.take(args[0]["lines"])

    async def scenario() -> list[int]:
        follower = LogFollower()
        async with aiohttp.ClientSession() as session:
            first = await connect(rest, session)
            await asyncio.to_thread(rest.add_to_group, task_group(TASK), first.connection_id)
            for _ in range(5):
                await asyncio.to_thread(write, 2)
            await drain(first, follower, 10)
            assert first.ws is not None
            first.ws._response.connection.transport.abort()  # type: ignore[union-attr]
            await first.closed.wait()
            for _ in range(4):  # published while the client is away: lost as events
                await asyncio.to_thread(write, 3)
            second = await connect(rest, session)
            await asyncio.to_thread(rest.add_to_group, task_group(TASK), second.connection_id)
            await asyncio.to_thread(write, 1)  # lands both in the live stream and the re-read
            follower.take([line.to_json() for line in store.read(TASK, after=follower.last)])
            for _ in range(3):
                await asyncio.to_thread(write, 2)
            await drain(second, follower, 29)
            await second.close()
        return follower.seqs

    assert run(scenario()) == list(range(1, 30))
