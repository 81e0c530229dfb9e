"""shared.httpclient.KeepAlivePool: the publisher's keep-alive connections on http.client
(Content-Length or chunked answers, one retry of a connection the server had closed) and
the HS256 tokens RestRealtime signs without PyJWT."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import jwt
import pytest

from shared.httpclient import HTTPFailure, KeepAlivePool
from shared.realtime.rest import sign_hs256

Answer = Callable[[bytes], tuple[bytes, bool]]  # request head+body -> (raw reply, close?)


@contextmanager
def server(answer: Answer) -> Iterator[tuple[str, list[bytes], list[int]]]:
    """A loopback server answering each request with ``answer``; yields its URL, the
    requests it read and how many connections it accepted (in a one-item list)."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []
    accepted = [0]

    def handle(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    more = conn.recv(65536)
                    if not more:
                        return
                    buffer += more
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                seen.append(request)
                reply, close = answer(request)
                conn.sendall(reply)
                if close:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/base", seen, accepted
    finally:
        listener.close()


def accepted_202(_: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", False


def test_requests_reuse_one_connection_and_are_written_whole() -> None:
    with server(accepted_202) as (url, seen, accepted):
        http = KeepAlivePool(url)
        for i in range(3):
            reply = http.request("POST", f"/base/x?i={i}", {"Content-Type": "application/json"},
                                 b'{"a":1}')
            assert reply.status == 202 and reply.body == b""
        http.close()
    assert accepted[0] == 1
    head, _, body = seen[2].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /base/x?i=2 HTTP/1.1"
    assert b"Content-Length: 7" in lines and body == b'{"a":1}'
    assert any(line.startswith(b"Host: 127.0.0.1:") for line in lines)


def test_chunked_and_sized_bodies_are_read_to_their_end() -> None:
    replies = iter([
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ])
    with server(lambda _: (next(replies), False)) as (url, _seen, accepted):
        http = KeepAlivePool(url)
        assert http.request("POST", "/a", {}, b"{}").body == b"hello world"
        assert http.request("GET", "/b").body == b"body"
        assert http.request("DELETE", "/c").status == 204
        http.close()
    assert accepted[0] == 1


def test_a_connection_the_server_closed_is_replaced_once() -> None:
    def close_after(_: bytes) -> tuple[bytes, bool]:
        return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", True

    with server(close_after) as (url, seen, accepted):
        http = KeepAlivePool(url)
        assert http.request("POST", "/a", {}, b"1").status == 202
        assert http.request("POST", "/a", {}, b"2").status == 202  # the pooled one is dead
        http.close()
    assert accepted[0] == 2 and len(seen) == 2


def test_connection_close_is_honoured() -> None:
    def says_close(_: bytes) -> tuple[bytes, bool]:
        return b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", True

    with server(says_close) as (url, _seen, accepted):
        http = KeepAlivePool(url)
        for _ in range(3):
            assert http.request("POST", "/a", {}, b"1").status == 202
        http.close()
    assert accepted[0] == 3


def test_no_answer_raises_and_a_silent_server_times_out() -> None:
    with server(lambda _: (b"", True)) as (url, _seen, _accepted), pytest.raises(HTTPFailure):
        KeepAlivePool(url).request("POST", "/a", {}, b"1")
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, pytest.raises(OSError):
        KeepAlivePool(f"http://127.0.0.1:{listener.getsockname()[1]}",
                      read_timeout=0.2).request("POST", "/a", {}, b"1")


def test_signed_tokens_verify_with_pyjwt_with_and_without_a_key_id() -> None:
    claims = {"aud": "http://h/api/hubs/x/:send", "iat": 1, "exp": 4_000_000_000}
    key = "k" * 44
    token = sign_hs256(claims, key)
    assert jwt.decode(token, key, algorithms=["HS256"], audience=claims["aud"]) == claims
    named = sign_hs256(claims, key, "kid-1")
    assert jwt.get_unverified_header(named) == {"alg": "HS256", "typ": "JWT", "kid": "kid-1"}
    assert jwt.decode(named, key, algorithms=["HS256"], audience=claims["aud"]) == claims


def test_a_header_that_would_split_the_request_is_refused_and_nothing_is_sent() -> None:
    with server(accepted_202) as (url, seen, _accepted), pytest.raises(ValueError):
        KeepAlivePool(url).request("POST", "/a", {"A": "1\r\nInjected: yes"}, b"1")
    assert seen == []
