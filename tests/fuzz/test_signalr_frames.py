"""Fuzzing the SignalR JSON hub protocol parser of the emulation (``localhost/signalr``):
malformed records, stray and missing 0x1E separators, deep nesting, odd sizes.

The parser may only answer with messages or ``ProtocolError`` (which closes that one
connection with a close frame). Over a real WebSocket on the local host, a client that
sends garbage is closed cleanly while a well-behaved connection beside it keeps receiving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from localhost.signalr import protocol
from tests.conftest import RunningHost
from tests.realtime._client import RS, HubClient

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
records = st.one_of(
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from(["type", "target", "arguments", "invocationId",
                                     "protocol", "version", "error"]),
                    json_values, max_size=4).map(json.dumps),
    st.text(max_size=40))
frames = st.one_of(
    st.lists(records, max_size=5).map(lambda parts: RS.join(parts)),
    st.lists(records, min_size=1, max_size=5).map(lambda parts: RS.join(parts) + RS),
    st.text(alphabet=st.sampled_from(["{", "}", "[", "]", '"', ":", ",", RS, "1", "a", " "]),
            max_size=200),
    st.integers(0, 200_000).map(lambda n: "[" * n + "]" * n + RS))


def _only_protocol_errors(call: Any, *args: Any) -> None:
    with contextlib.suppress(protocol.ProtocolError):
        call(*args)


@given(frames)
@example("[" * 100_000 + "]" * 100_000 + RS)  # deeper than json's recursion limit
@example(RS)
@example("")
@settings(max_examples=400, deadline=None)
def test_the_frame_parser_answers_messages_or_a_protocol_error(frame: str) -> None:
    try:
        messages = protocol.split_frames(frame)
    except protocol.ProtocolError:
        pass
    else:
        assert all(isinstance(m, dict) for m in messages)
        for message in messages:
            _only_protocol_errors(protocol.check_message, message)
    error = protocol.parse_handshake(frame)
    assert error is None or isinstance(error, str)


def _negotiate(host: RunningHost) -> tuple[str, str]:
    r = host.session("fuzzer", ("admin",)).post(host.url("/api/negotiate"))
    assert r.status_code == 200, r.text
    return r.json()["url"], r.json()["accessToken"]


async def _abuse_and_check_witness(host: RunningHost, garbage: list[str]) -> None:
    url, token = _negotiate(host)
    async with aiohttp.ClientSession() as http:
        witness = await HubClient(http, url, token).connect()
        for frame in garbage:
            victim = await HubClient(http, url, token).connect()
            assert victim.ws is not None
            await victim.ws.send_str(frame)
            # the victim either stays open (a valid ping/ack) or is closed by the server;
            # either way the host answers without an error status or a crash. Barrier: an
            # invocation after it, which a serverless hub answers by closing: once the
            # victim is closed, the server has handled the garbage frame too.
            with contextlib.suppress(ConnectionError, RuntimeError):
                await victim.ws.send_str(INVOKE)
            await asyncio.wait_for(victim.closed.wait(), 10)
            await victim.close()
        # the well-behaved connection beside them is still open and accepts a ping
        await witness.send_raw(json.dumps({"type": 6}) + RS)
        assert witness.ws is not None and not witness.ws.closed
        assert not witness.closed.is_set()
        # barrier: its own invocation closes it, for that reason and no other, so it was
        # open (not closed by its neighbours' garbage) until then
        await witness.send_raw(INVOKE)
        await asyncio.wait_for(witness.closed.wait(), 10)
        assert [m.get("error") for m in witness.other if m.get("type") == 7] == [SERVERLESS]
        await witness.close()


# A client invocation, and what the serverless hub says when it closes a client for it.
INVOKE = json.dumps({"type": 1, "target": "anything", "arguments": []}) + RS
SERVERLESS = ("Connection closed with an error. Serverless mode: clients cannot invoke hub"
              " methods.")


@given(st.lists(frames, min_size=1, max_size=8))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
def test_malformed_frames_close_only_their_own_connection(running_host: RunningHost,
                                                          garbage: list[str]) -> None:
    asyncio.run(_abuse_and_check_witness(running_host, garbage))
    assert running_host.proc.poll() is None
    assert running_host.session().get(running_host.url("/api/health")).status_code == 200
