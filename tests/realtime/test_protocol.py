"""The JSON hub protocol framing and the token rules of the emulation, without sockets."""

from __future__ import annotations

import time

import jwt
import pytest

from localhost.signalr import protocol, tokens


def test_one_frame_may_carry_several_records() -> None:
    frame = '{"type":6}\x1e{"type":1,"target":"x","arguments":[]}\x1e'
    assert [m["type"] for m in protocol.split_frames(frame)] == [6, 1]


@pytest.mark.parametrize("frame", ['{"type":6}', "\x1e", "[1]\x1e", "nope\x1e"])
def test_malformed_frames_are_protocol_errors(frame: str) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.split_frames(frame)


@pytest.mark.parametrize(("frame", "ok"), [
    ('{"protocol":"json","version":1}\x1e', True),
    ('{"protocol":"json","version":1}\x1e{"type":6}\x1e', True),
    ('{"protocol":"messagepack","version":1}\x1e', False),
    ('{"protocol":"json","version":2}\x1e', False),
    ('{"protocol":"json","version":1}', False)])
def test_handshake_accepts_json_version_1_only(frame: str, ok: bool) -> None:
    assert (protocol.parse_handshake(frame) is None) is ok


def test_invocation_frames_are_compact_and_terminated() -> None:
    assert protocol.invocation_frame("t", [{"a": "é"}]) == \
        '{"type":1,"target":"t","arguments":[{"a":"é"}]}\x1e'


def test_audiences_match_regardless_of_case_trailing_slash_and_encoding() -> None:
    key = "k" * 40
    token = jwt.encode({"aud": "HTTP://Host:1/signalr/api/hubs/h/groups/task%3A1/:send",
                        "exp": int(time.time()) + 60}, key, algorithm="HS256")
    claims = tokens.verify(token, key, "http://host:1/signalr/api/hubs/h/groups/task:1/:send/")
    assert claims.user_id is None
    with pytest.raises(tokens.TokenError):
        tokens.verify(token, key, "http://host:1/signalr/api/hubs/h/groups/task:2/:send")


def test_client_audience_includes_the_hub() -> None:
    key = "k" * 40
    token = tokens.issue(key, "http://h/signalr/client/?hub=One", user_id="u", ttl_seconds=60,
                         now=time.time())
    assert tokens.verify(token, key, "http://h/signalr/client?hub=one").user_id == "u"
    with pytest.raises(tokens.TokenError):
        tokens.verify(token, key, "http://h/signalr/client/?hub=two")


def test_tokens_without_expiry_are_refused() -> None:
    key = "k" * 40
    token = jwt.encode({"aud": "http://h/x"}, key, algorithm="HS256")
    with pytest.raises(tokens.TokenError):
        tokens.verify(token, key, "http://h/x")
