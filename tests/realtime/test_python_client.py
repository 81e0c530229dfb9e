"""A third-party Python SignalR client (``pysignalr``) against the emulation, through our
negotiate function. pysignalr follows the ``{url, accessToken}`` redirect and then opens
the WebSocket directly (skip-negotiation, as the service allows), so it never learns its
connection id and cannot join groups by id; it is checked on user-addressed events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pysignalr.client import SignalRClient

from shared.realtime import RestRealtime
from shared.services import Services
from tests.realtime._bridge import add_realtime_functions
from tests.realtime._server import Emulator, run_emulator
from tests.realtime.test_emulation import run
from tests.realtime.test_functions import principal_headers


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with run_emulator(tmp_path_factory.mktemp("signalr-py"),
                      extra_routes=add_realtime_functions) as emu:
        yield emu


def test_pysignalr_client_receives_its_users_events_in_order(
        app_services: Services, world: dict[str, Any], rest: RestRealtime,
        emulator: Emulator) -> None:
    user = world["reader"]

    async def scenario() -> list[Any]:
        client = SignalRClient(f"{emulator.base_url}/api",
                               headers=principal_headers(user))
        received: list[Any] = []
        opened, done = asyncio.Event(), asyncio.Event()

        async def on_open() -> None:
            opened.set()

        async def on_task(args: list[Any]) -> None:
            received.append(args[0]["n"])
            if len(received) == 10:
                done.set()

        client.on_open(on_open)
        client.on("taskUpdated", on_task)
        runner = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(opened.wait(), 10)
            for n in range(10):
                await asyncio.to_thread(rest.send_to_user, user, "taskUpdated", [{"n": n}])
                await asyncio.to_thread(rest.send_to_user, "someone-else", "taskUpdated",
                                        [{"n": -1}])
            await asyncio.wait_for(done.wait(), 10)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return received

    assert run(scenario()) == list(range(10))
