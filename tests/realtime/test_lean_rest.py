"""The REST API on its own port (localhost.signalr.lean), where the app publishes: plain
HTTP/1.1 as aiohttp served it — keep-alive and pipelined requests answered in order,
404/405, a chunked body refused with 411, ``Connection: close`` honoured, path
parameters URL-decoded, ``excluded`` connections skipped."""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import quote, urlsplit

import aiohttp

from shared.realtime import RestRealtime
from tests.realtime._server import Emulator
from tests.realtime.test_emulation import connect, run


def _address(emulator: Emulator) -> tuple[str, int, str]:
    assert emulator.extension.rest is not None
    url = emulator.extension.rest.url
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port, url


def _send_request(rest: RestRealtime, url: str, group: str, target: str, args: list[object],
                  extra: str = "", query: str = "") -> bytes:
    path = f"/api/hubs/cloudops/groups/{quote(group, safe='')}/:send"
    body = json.dumps({"target": target, "arguments": args}).encode()
    return (f"POST {path}?api-version=2022-06-01{query} HTTP/1.1\r\n"
            f"Host: {urlsplit(url).netloc}\r\nAuthorization: Bearer {rest._bearer(url + path)}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}"
            "\r\n").encode() + body


def _replies(sock: socket.socket, count: int) -> list[bytes]:
    """The status lines of ``count`` answers (all bodiless or read whole)."""
    data = b""
    statuses: list[bytes] = []
    while len(statuses) < count:
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            assert more, f"closed after {statuses}"
            data += more
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next((int(line.split(b":")[1]) for line in lines
                       if line.lower().startswith(b"content-length:")), 0)
        while len(data) < length:
            data += sock.recv(65536)
        data = data[length:]
        statuses.append(head)
    return statuses


def test_pipelined_publishes_are_delivered_and_answered_in_order(
        emulator: Emulator, rest: RestRealtime) -> None:
    host, port, url = _address(emulator)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            member = await connect(rest, session)
            await asyncio.to_thread(rest.add_to_group, "task:x y", member.connection_id)
            requests = b"".join(_send_request(rest, url, "task:x y", "n", [i])
                                for i in range(3))

            def exchange() -> list[bytes]:
                with socket.create_connection((host, port)) as sock:
                    sock.sendall(requests)
                    return _replies(sock, 3)

            heads = await asyncio.to_thread(exchange)
            assert [h.split(b"\r\n")[0] for h in heads] == [b"HTTP/1.1 202 Accepted"] * 3
            assert [await member.next() for _ in range(3)] == [("n", [i]) for i in range(3)]
            await member.close()
    run(scenario())


def test_excluded_connections_do_not_receive_a_group_send(
        emulator: Emulator, rest: RestRealtime) -> None:
    host, port, url = _address(emulator)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            kept = await connect(rest, session)
            left_out = await connect(rest, session, "bob")
            for client in (kept, left_out):
                await asyncio.to_thread(rest.add_to_group, "g:ex", client.connection_id)

            def exchange() -> list[bytes]:
                with socket.create_connection((host, port)) as sock:
                    sock.sendall(_send_request(rest, url, "g:ex", "only", [1],
                                               query=f"&excluded={left_out.connection_id}"))
                    return _replies(sock, 1)

            assert (await asyncio.to_thread(exchange))[0].startswith(b"HTTP/1.1 202")
            await asyncio.to_thread(rest.send_to_group, "g:ex", "both", [2])
            assert await kept.next() == ("only", [1])
            assert await kept.next() == ("both", [2])
            assert await left_out.next() == ("both", [2])
            await kept.close()
            await left_out.close()
    run(scenario())


def test_unknown_paths_wrong_methods_and_chunked_bodies_are_refused(
        emulator: Emulator, rest: RestRealtime) -> None:
    host, port, _url = _address(emulator)
    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"GET /nowhere HTTP/1.1\r\nHost: {host}\r\n\r\n"
                     f"GET /api/hubs/cloudops/:send HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert [h.split(b"\r\n")[0] for h in _replies(sock, 2)] == [
            b"HTTP/1.1 404 Not Found", b"HTTP/1.1 405 Method Not Allowed"]
        sock.sendall(f"POST /api/hubs/cloudops/:send HTTP/1.1\r\nHost: {host}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n".encode())
        (head,) = _replies(sock, 1)
        assert head.startswith(b"HTTP/1.1 411") and b"Connection: close" in head
        assert sock.recv(10) == b""


def test_connection_close_is_honoured(emulator: Emulator, rest: RestRealtime) -> None:
    host, port, url = _address(emulator)
    with socket.create_connection((host, port)) as sock:
        sock.sendall(_send_request(rest, url, "g:none", "t", [], extra="Connection: close\r\n"))
        (head,) = _replies(sock, 1)
        assert head.startswith(b"HTTP/1.1 202") and b"Connection: close" in head
        assert sock.recv(10) == b""
