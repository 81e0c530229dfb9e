"""What the emulation refuses, as Azure SignalR Service does: bad, expired or mis-addressed
tokens, wrong api-versions, malformed or oversized frames — each without disturbing other
connections — and silent clients past the server timeout."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import pytest

from localhost.signalr import ClientOptions
from shared.realtime import RestRealtime
from shared.realtime.connection_string import parse_connection_string
from tests.realtime._client import RS, HubClient
from tests.realtime._server import Emulator, run_emulator
from tests.realtime.test_emulation import connect, run
from tests.waiting import async_wait_until


def client_token(emulator: Emulator, *, key: str | None = None, hub: str = "cloudops",
                 exp_in: int = 600, user: str = "alice", aud: str | None = None) -> str:
    audience = aud or f"{emulator.endpoint}/client/?hub={hub}"
    return jwt.encode({"aud": audience, "exp": int(time.time()) + exp_in, "nameid": user},
                      key or emulator.extension.access_key, algorithm="HS256")


async def negotiate_status(emulator: Emulator, token: str, hub: str = "cloudops") -> int:
    async with aiohttp.ClientSession() as session, session.post(
            f"{emulator.endpoint}/client/negotiate?hub={hub}&negotiateVersion=1",
            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status


@pytest.mark.parametrize("case", ["wrong key", "expired", "other hub", "other host",
                                  "garbage", "missing"])
def test_negotiate_refuses_bad_client_tokens(emulator: Emulator, case: str) -> None:
    token = {
        "wrong key": lambda: client_token(emulator, key="x" * 48),
        "expired": lambda: client_token(emulator, exp_in=-60),
        "other hub": lambda: client_token(emulator, hub="another"),
        "other host": lambda: client_token(
            emulator, aud="http://elsewhere.example/signalr/client/?hub=cloudops"),
        "garbage": lambda: "not-a-jwt",
        "missing": lambda: "",
    }[case]()
    assert run(negotiate_status(emulator, token)) == 401


def test_negotiate_accepts_a_valid_token(emulator: Emulator) -> None:
    assert run(negotiate_status(emulator, client_token(emulator))) == 200


def test_websocket_refuses_a_token_not_matching_the_negotiation(emulator: Emulator) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            good = client_token(emulator)
            client = HubClient(session, f"{emulator.endpoint}/client/?hub=cloudops", good)
            info = await client.negotiate()
            for bad in (client_token(emulator, user="mallory"),
                        client_token(emulator, key="y" * 48)):
                url = (f"{emulator.endpoint}/client/?hub=cloudops&id="
                       f"{info['connectionToken']}&access_token={bad}")
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await session.ws_connect(url.replace("http", "ws", 1))
                assert err.value.status == 401
    run(scenario())


def rest_endpoint(emulator: Emulator, where: str) -> str:
    """The REST API under the host's /signalr, or on its own port (localhost.signalr.lean,
    where the app publishes): both answer alike."""
    if where == "host":
        return emulator.endpoint
    assert emulator.extension.rest is not None
    return emulator.extension.rest.url


@pytest.mark.parametrize("where", ["host", "own port"])
@pytest.mark.parametrize("case", ["no token", "wrong audience", "wrong key", "api-version"])
def test_rest_api_refuses_bad_bearer_tokens_and_versions(emulator: Emulator,
                                                         case: str, where: str) -> None:
    endpoint = rest_endpoint(emulator, where)
    url = f"{endpoint}/api/hubs/cloudops/:send"
    key = emulator.extension.access_key
    token = {
        "no token": "",
        "wrong audience": jwt.encode({"aud": f"{endpoint}/api/hubs/other/:send",
                                      "exp": int(time.time()) + 60}, key, algorithm="HS256"),
        "wrong key": jwt.encode({"aud": url, "exp": int(time.time()) + 60}, "z" * 48,
                                algorithm="HS256"),
        "api-version": jwt.encode({"aud": url, "exp": int(time.time()) + 60}, key,
                                  algorithm="HS256"),
    }[case]
    version = "1999-01-01" if case == "api-version" else "2022-06-01"

    async def post() -> int:
        async with aiohttp.ClientSession() as session, session.post(
                url, params={"api-version": version},
                json={"target": "t", "arguments": []},
                headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status
    assert run(post()) == (400 if case == "api-version" else 401)


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400), (b'{"arguments": []}', 400),
    (b'{"target": "t", "arguments": {}}', 400),
    (b'{"target": "t", "arguments": ["' + b"x" * (1024 * 1024) + b'"]}', 413)])
@pytest.mark.parametrize("where", ["host", "own port"])
def test_rest_api_refuses_malformed_or_oversized_bodies(
        emulator: Emulator, rest: RestRealtime, body: bytes, status: int, where: str) -> None:
    url = f"{rest_endpoint(emulator, where)}/api/hubs/cloudops/:send"

    async def post() -> int:
        async with aiohttp.ClientSession() as session, session.post(
                url, params={"api-version": "2022-06-01"}, data=io.BytesIO(body),
                headers={"Authorization": f"Bearer {rest._bearer(url)}",
                         "Content-Type": "application/json"}) as resp:
            return resp.status
    assert run(post()) == status


async def _bystander_still_receives(rest: RestRealtime, bystander: HubClient) -> None:
    await asyncio.to_thread(rest.send_to_user, "bystander", "stillHere", [1])
    assert await bystander.next() == ("stillHere", [1])


@pytest.mark.parametrize("frame", [
    "{not json}" + RS, json.dumps({"type": 1}), json.dumps([1, 2]) + RS,
    json.dumps({"type": "ping"}) + RS, b"\x00\x01binary"])
def test_malformed_frames_close_only_the_sender_with_an_error(
        rest: RestRealtime, frame: str | bytes) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            bad = await connect(rest, session)
            bystander = await connect(rest, session, "bystander")
            assert bad.ws is not None
            if isinstance(frame, bytes):
                await bad.ws.send_bytes(frame)
            else:
                await bad.send_raw(frame)
            await asyncio.wait_for(bad.closed.wait(), 5)
            closes = [m for m in bad.other if m.get("type") == 7]
            assert closes and "error" in closes[0]
            await _bystander_still_receives(rest, bystander)
            await bystander.close()
    run(scenario())


def test_oversized_client_message_closes_only_the_sender(rest: RestRealtime) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            big = await connect(rest, session)
            bystander = await connect(rest, session, "bystander")
            await big.send_raw(json.dumps({"type": 6, "pad": "x" * 40_000}) + RS)
            await asyncio.wait_for(big.closed.wait(), 5)
            assert big.ws is not None and big.ws.close_code == 1009
            await _bystander_still_receives(rest, bystander)
            await bystander.close()
    run(scenario())


def test_client_invocations_close_the_connection_as_in_serverless_mode(
        rest: RestRealtime) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            c = await connect(rest, session)
            bystander = await connect(rest, session, "bystander")
            await c.send_raw(json.dumps({"type": 1, "invocationId": "7", "target": "Echo",
                                         "arguments": []}) + RS)
            await asyncio.wait_for(c.closed.wait(), 5)
            assert c.other[-1]["type"] == 7 and "Serverless" in c.other[-1]["error"]
            await _bystander_still_receives(rest, bystander)
            await bystander.close()
    run(scenario())


def test_handshake_for_an_unsupported_protocol_is_refused(emulator: Emulator,
                                                          rest: RestRealtime) -> None:
    async def scenario() -> str:
        async with aiohttp.ClientSession() as session:
            info = rest.negotiate("alice")
            client = HubClient(session, info["url"], info["accessToken"])
            token = (await client.negotiate())["connectionToken"]
            ws = await session.ws_connect(
                f"{info['url']}&id={token}&access_token={info['accessToken']}"
                .replace("http", "ws", 1))
            await ws.send_str(json.dumps({"protocol": "messagepack", "version": 1}) + RS)
            reply = await ws.receive(timeout=5)
            await ws.close()
            return str(reply.data)
    reply = run(scenario())
    assert "error" in json.loads(reply.rstrip(RS))


def test_cors_preflight_names_the_origin_and_allows_credentials(emulator: Emulator) -> None:
    async def scenario() -> Any:
        async with aiohttp.ClientSession() as session, session.options(
                f"{emulator.endpoint}/client/negotiate?hub=cloudops",
                headers={"Origin": "http://localhost:4280",
                         "Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "authorization,x-signalr-user-agent"}
        ) as resp:
            return resp.status, resp.headers
    status, headers = run(scenario())
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:4280"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "authorization" in headers["Access-Control-Allow-Headers"]


@pytest.fixture
def fast_emulator(tmp_path: Any) -> Iterator[Emulator]:
    with run_emulator(tmp_path, ClientOptions(ping_interval=0.1, client_timeout=0.6)) as emu:
        yield emu


def test_server_pings_and_closes_a_client_silent_past_the_timeout(
        fast_emulator: Emulator) -> None:
    rt = RestRealtime(parse_connection_string(fast_emulator.connection_string), "cloudops")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            silent = await connect(rt, session)  # this client never sends anything
            await asyncio.wait_for(silent.closed.wait(), 5)
            types = [m.get("type") for m in silent.other]
            assert 6 in types  # keep-alive pings came first
            assert types[-1] == 7 and "timeout" in silent.other[-1]["error"].lower()
    run(scenario())
    rt.close()


def test_cors_refuses_origins_outside_a_configured_list(tmp_path: Any) -> None:
    async def preflight(endpoint: str, origin: str) -> Any:
        async with aiohttp.ClientSession() as session, session.options(
                f"{endpoint}/client/negotiate?hub=cloudops",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"}) as resp:
            return resp.status, resp.headers.get("Access-Control-Allow-Origin")
    with run_emulator(tmp_path, cors_origins=["http://ui.example"]) as emu:
        assert run(preflight(emu.endpoint, "http://ui.example")) == (204, "http://ui.example")
        assert run(preflight(emu.endpoint, "http://evil.example")) == (403, None)


def test_a_client_that_stops_reading_is_dropped_and_others_keep_receiving(
        rest: RestRealtime, emulator: Emulator) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            stalled = await connect(rest, session, "stalled")
            reader = await connect(rest, session, "reader")
            assert stalled._reader is not None and stalled.ws is not None
            stalled._reader.cancel()  # keeps the socket open but never reads again
            stalled.ws._response.connection.transport.pause_reading()  # type: ignore[union-attr]
            blob = "x" * 800_000
            for i in range(30):  # ~24 MB: past the kernel's buffers and the 4 MiB backlog
                await asyncio.to_thread(rest.send_to_all, "bulk", [i, blob])
            got = [(await reader.next())[1][0] for _ in range(30)]
            assert got == list(range(30))
            hub = emulator.extension.service.hub("cloudops")
            await async_wait_until(lambda: stalled.connection_id not in hub.connections,
                                   "the stalled connection to be dropped", 10)
            assert reader.connection_id in hub.connections
            await reader.close()
    run(scenario())
