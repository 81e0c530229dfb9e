"""The SignalR emulation end to end with the app's REST adapter and a protocol-exact client.

The client (``_client.HubClient``) follows the official client's wire steps; the official
``@microsoft/signalr`` client itself is exercised in ``test_official_client.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import pytest

from shared.errors import NotFound
from shared.realtime import RestRealtime
from tests.realtime._client import HubClient
from tests.realtime._server import Emulator
from tests.waiting import async_wait_until


async def connect(rest: RestRealtime, session: aiohttp.ClientSession,
                  user: str | None = "alice") -> HubClient:
    info = rest.negotiate(user, ttl=600)
    return await HubClient(session, info["url"], info["accessToken"]).connect()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_group_member_receives_its_groups_events_in_order_and_nothing_else(
        rest: RestRealtime) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            member = await connect(rest, session)
            outsider = await connect(rest, session, "bob")
            await asyncio.to_thread(rest.add_to_group, "task:1", member.connection_id)
            await asyncio.to_thread(rest.add_to_group, "task:2", outsider.connection_id)
            for i in range(20):
                await asyncio.to_thread(rest.send_to_group, "task:1", "taskLog", [{"n": i}])
            await asyncio.to_thread(rest.send_to_group, "task:2", "taskLog", [{"n": "other"}])
            got = [await member.next() for _ in range(20)]
            assert got == [("taskLog", [{"n": i}]) for i in range(20)]
            assert await outsider.next() == ("taskLog", [{"n": "other"}])
            assert member.invocations.empty()
            await member.close()
            await outsider.close()
    run(scenario())


def test_send_to_user_reaches_every_connection_of_that_user_only(rest: RestRealtime) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            a1, a2 = await connect(rest, session, "ann"), await connect(rest, session, "ann")
            other = await connect(rest, session, "ben")
            assert await asyncio.to_thread(rest.send_to_user, "ann", "hello", [1])
            assert await a1.next() == ("hello", [1])
            assert await a2.next() == ("hello", [1])
            await asyncio.to_thread(rest.send_to_all, "everyone", [2])
            assert await other.next() == ("everyone", [2])
            assert await a1.next() == ("everyone", [2])
            for c in (a1, a2, other):
                await c.close()
    run(scenario())


def test_removed_connection_stops_receiving_group_events(rest: RestRealtime) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            c = await connect(rest, session)
            await asyncio.to_thread(rest.add_to_group, "project:p", c.connection_id)
            await asyncio.to_thread(rest.remove_from_group, "project:p", c.connection_id)
            await asyncio.to_thread(rest.send_to_group, "project:p", "taskUpdated", [{}])
            await asyncio.to_thread(rest.send_to_all, "marker", [])
            assert await c.next() == ("marker", [])
            await c.close()
    run(scenario())


def test_adding_an_unknown_connection_to_a_group_is_not_found(rest: RestRealtime) -> None:
    with pytest.raises(NotFound):
        rest.add_to_group("task:1", "no-such-connection")


def test_user_group_membership_applies_to_connections_made_later(
        rest: RestRealtime, emulator: Emulator) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            url = f"{emulator.endpoint}/api/hubs/cloudops/users/carol/groups/agents"
            token = rest._bearer(url)
            async with session.put(url, params={"api-version": "2022-06-01"},
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
            c = await connect(rest, session, "carol")
            await asyncio.to_thread(rest.send_to_group, "agents", "agentUpdated", [{"id": 1}])
            assert await c.next() == ("agentUpdated", [{"id": 1}])
            await c.close()
    run(scenario())


def test_abrupt_disconnect_leaves_no_membership_and_others_keep_receiving(
        rest: RestRealtime, emulator: Emulator) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            doomed = await connect(rest, session)
            survivor = await connect(rest, session)
            for c in (doomed, survivor):
                await asyncio.to_thread(rest.add_to_group, "task:abrupt", c.connection_id)
            assert doomed.ws is not None
            transport = doomed.ws._response.connection.transport  # type: ignore[union-attr]
            transport.abort()  # no close frame: the TCP connection just dies
            await doomed.closed.wait()
            await async_wait_until(
                lambda: doomed.connection_id not in emulator.extension.service.hub(
                    "cloudops").connections, "the dead connection to be dropped", 10)
            group = emulator.extension.service.hub("cloudops").groups["task:abrupt"]
            assert group == {survivor.connection_id}
            await asyncio.to_thread(rest.send_to_group, "task:abrupt", "taskLog", ["x"])
            assert await survivor.next() == ("taskLog", ["x"])
            await survivor.close()
    run(scenario())


def test_publish_failure_is_logged_without_secrets_and_never_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    from shared.realtime.connection_string import parse_connection_string
    from tests.realtime._server import free_port

    key = "k" * 44
    service = parse_connection_string(
        f"Endpoint=http://127.0.0.1:{free_port()};AccessKey={key};Version=1.0;")
    rt = RestRealtime(service, "cloudops", timeout=0.5)
    assert rt.send_to_group("task:1", "taskUpdated", [{}]) is False
    # Within the back-off window no further attempt is made (and nothing raises).
    assert rt.send_to_all("taskUpdated", [{}]) is False
    assert "failed" in caplog.text
    assert key not in caplog.text and "Bearer" not in caplog.text


def test_identity_based_adapter_signs_with_a_key_fetched_for_its_entra_token(
        emulator: Emulator) -> None:
    """Without a key the adapter fetches a signing key from ``/api/v1/auth/accessKey`` with
    an Entra token (as the SignalR SDKs do under the SignalR App Server role) and signs
    with it, naming it by ``kid``. Entra cannot run offline, so the stand-in credential
    signs its token with the emulation's key: the request shapes are what is checked."""
    from shared.realtime.connection_string import parse_connection_string

    key = emulator.extension.access_key

    class StandInCredential:
        calls = 0

        def get_token(self, scope: str) -> Any:
            StandInCredential.calls += 1
            assert scope == "https://signalr.azure.com/.default"
            token = jwt.encode({"aud": f"{emulator.endpoint}/api/v1/auth/accessKey",
                                "exp": int(time.time()) + 600}, key, algorithm="HS256")
            return type("AccessToken", (), {"token": token,
                                            "expires_on": int(time.time()) + 3600})()

    service = parse_connection_string(f"Endpoint={emulator.endpoint};AuthType=azure.msi;")
    rt = RestRealtime(service, "cloudops", credential=StandInCredential())

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            info = rt.negotiate("dora", ttl=600)
            assert info["url"] == f"{emulator.endpoint}/client/?hub=cloudops"
            assert "kid" in jwt.get_unverified_header(info["accessToken"])
            client = await HubClient(session, info["url"], info["accessToken"]).connect()
            await asyncio.to_thread(rt.add_to_group, "task:mi", client.connection_id)
            assert await asyncio.to_thread(rt.send_to_group, "task:mi", "taskLog", ["hi"])
            assert await client.next() == ("taskLog", ["hi"])
            await client.close()
    run(scenario())
    assert StandInCredential.calls == 1  # the key is reused, not fetched per request
    rt.close()


def test_signing_keys_are_refused_without_a_valid_entra_stand_in_token(
        emulator: Emulator) -> None:
    async def fetch(token: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(
                f"{emulator.endpoint}/api/v1/auth/accessKey",
                headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status
    assert run(fetch("not-a-token")) == 401
    forged = jwt.encode({"aud": f"{emulator.endpoint}/api/hubs/cloudops/:send", "exp":
                         int(time.time()) + 60}, "k" * 40, algorithm="HS256",
                        headers={"kid": "made-up"})
    assert run(rest_send_status(emulator, forged)) == 401


async def rest_send_status(emulator: Emulator, token: str) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            f"{emulator.endpoint}/api/hubs/cloudops/:send?api-version=2022-06-01",
            json={"target": "t", "arguments": []},
            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status


def test_publishing_from_a_coroutine_on_the_servers_own_loop_does_not_stall_it(
        rest: RestRealtime, emulator: Emulator) -> None:
    """An ``async def`` function in the local host runs on the loop that also serves the
    emulation: a blocking publish there would wait on itself until its timeout."""
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            c = await connect(rest, session, "looper")

            async def publish_on_server_loop() -> None:
                for i in range(3):
                    rest.send_to_user("looper", "taskLog", [i])  # sync call, on the loop

            await asyncio.to_thread(emulator.call, publish_on_server_loop(), 2.0)
            assert [await c.next() for _ in range(3)] == [("taskLog", [i]) for i in range(3)]
            await c.close()
    run(scenario())
