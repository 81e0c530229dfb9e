"""One contract for every Realtime adapter: the in-memory fake and the REST adapter against
the emulation must route messages the same way."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from shared.errors import NotFound
from shared.realtime import InMemoryRealtime, Realtime, RestRealtime
from tests.realtime._client import HubClient


class Harness:
    """Connect clients and read what they received, for either adapter."""

    def __init__(self, rt: Realtime, connect: Callable[[str], Any],
                 received: Callable[[Any, int], list[tuple[str, list[Any]]]]) -> None:
        self.rt = rt
        self.connect = connect
        self.received = received


@pytest.fixture(params=["memory", "rest"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        fake = InMemoryRealtime()
        yield Harness(fake, fake.connect, lambda c, n: list(c.received))
        return
    rest: RestRealtime = request.getfixturevalue("rest")
    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    clients: dict[HubClient, str] = {}
    barriers = itertools.count()

    def connect(user: str) -> HubClient:
        info = rest.negotiate(user)
        client = loop.run_until_complete(
            HubClient(session, info["url"], info["accessToken"]).connect())
        clients[client] = user
        return client

    def received(client: HubClient, expected: int) -> list[tuple[str, list[Any]]]:
        # Barrier: a marker sent after everything the test sent. Once it is in, anything
        # extra (a duplicate, a message that should not have come) has arrived before it.
        marker = ("__barrier__", [next(barriers)])
        assert rest.send_to_user(clients[client], *marker)

        async def collect() -> list[tuple[str, list[Any]]]:
            got: list[tuple[str, list[Any]]] = []
            while (message := await client.next()) != marker:
                if message[0] != "__barrier__":  # another connection's marker
                    got.append(message)
            return got
        got = loop.run_until_complete(collect())
        assert len(got) >= expected, got
        return got

    yield Harness(rest, connect, received)
    for client in list(clients):
        loop.run_until_complete(client.close())
    loop.run_until_complete(session.close())
    loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def test_group_user_and_broadcast_routing(harness: Harness) -> None:
    a, b = harness.connect("ann"), harness.connect("ben")
    harness.rt.add_to_group("task:1", a.connection_id if hasattr(a, "connection_id") else a.id)
    assert harness.rt.send_to_group("task:1", "taskLog", [1])
    assert harness.rt.send_to_user("ben", "agentUpdated", [2])
    assert harness.rt.send_to_all("taskUpdated", [3])
    assert harness.received(a, 2) == [("taskLog", [1]), ("taskUpdated", [3])]
    assert harness.received(b, 2) == [("agentUpdated", [2]), ("taskUpdated", [3])]


def test_leaving_a_group_stops_its_events(harness: Harness) -> None:
    a = harness.connect("ann")
    cid = a.connection_id if hasattr(a, "connection_id") else a.id
    harness.rt.add_to_group("project:p", cid)
    harness.rt.remove_from_group("project:p", cid)
    harness.rt.remove_from_group("project:p", cid)  # leaving twice is fine
    harness.rt.send_to_group("project:p", "taskUpdated", [1])
    harness.rt.send_to_user("ann", "marker", [])
    assert harness.received(a, 1) == [("marker", [])]


def test_unknown_connection_cannot_join(harness: Harness) -> None:
    with pytest.raises(NotFound):
        harness.rt.add_to_group("task:1", "nobody")


def test_negotiate_names_the_hub_and_carries_a_token(harness: Harness) -> None:
    info = harness.rt.negotiate("ann", ttl=60)
    assert info["url"].endswith("/client/?hub=cloudops")
    assert info["accessToken"]
