"""The Durable SDK's HTTP calls from a worker process, without aiohttp's client.

A worker's ``DurableOrchestrationClient`` reaches the host's Durable HTTP API over HTTP,
as in Azure (``start_new`` from the Service Bus trigger and ``raise_event`` from
``finish_task``: two calls per task). The SDK makes them with an ``aiohttp.ClientSession``,
about 250 µs of CPU per call; ``install`` swaps the SDK's three request functions for ones
that send the same requests (method, URL, JSON body, ``traceparent``/``tracestate`` and
``X-Azure-Functions-InvocationId`` headers) over keep-alive connections with asyncio
streams and give back what the SDK's did: ``[status, parsed JSON body or None]`` (``""``
for an empty GET answer). A connection the host had closed is replaced once, as the SDK's
session does; other failures raise ``aiohttp.ClientConnectionError`` or ``TimeoutError``,
the errors the SDK's functions raised.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

_CLIENT_MODULE = "azure.durable_functions.models.DurableOrchestrationClient"
TOTAL_TIMEOUT = 240.0  # the SDK session's total timeout
CONNECT_TIMEOUT = 10.0
_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Stale(Exception):
    """Nothing came back on a pooled connection (the host had closed it)."""


class StreamClient:
    """Keep-alive HTTP/1.1 connections per origin, on the loop that uses them."""

    def __init__(self, size: int = 30) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._size = size

    async def request(self, method: str, url: str, body: bytes | None,
                      headers: dict[str, str]) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise aiohttp.InvalidURL(url)
        origin = (parts.hostname, parts.port or 80)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if "\r" in lines.replace("\r\n", "") or "\n" in lines.replace("\r\n", ""):
            raise ValueError("header values must not contain CR or LF")
        length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
        data = (f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}{length}"
                "\r\n").encode("latin-1") + (body or b"")
        idle = self._idle.setdefault(origin, [])
        async with asyncio.timeout(TOTAL_TIMEOUT):
            for attempt in (0, 1):
                reused = bool(idle)
                connection = idle.pop() if idle else await self._connect(origin)
                try:
                    status, answer, keep = await _exchange(connection, data, method == "HEAD")
                except _Stale:
                    connection[1].close()
                    if reused and attempt == 0:
                        continue
                    raise aiohttp.ServerDisconnectedError() from None
                except BaseException:
                    connection[1].close()
                    raise
                if keep and len(idle) < self._size:
                    idle.append(connection)
                else:
                    connection[1].close()
                return status, answer
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    async def _connect(origin: tuple[str, int]) -> _Connection:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection(*origin)
        except OSError as exc:
            raise aiohttp.ClientConnectionError(f"cannot connect to {origin}: {exc}") from exc

    def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop()[1].close()


async def _exchange(connection: _Connection, data: bytes,
                    head_only: bool) -> tuple[int, bytes, bool]:
    reader, writer = connection
    try:
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        raise _Stale from None
    except asyncio.LimitOverrunError:
        raise aiohttp.ClientConnectionError("response head too large") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise aiohttp.ClientConnectionError("not an HTTP/1.x response")
    status = int(rest[:3])
    length: int | None = None
    chunked = False
    keep = version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            keep = "close" not in value.lower() and (keep or "keep-alive" in value.lower())
    try:
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    break
                parts.append((await reader.readexactly(size + 2))[:-2])
            body = b"".join(parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body, keep = await reader.read(), False
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise aiohttp.ClientPayloadError(f"response body cut short: {exc}") from exc
    return status, body, keep


_client: StreamClient | None = None


def _stream_client() -> StreamClient:
    global _client
    if _client is None:
        _client = StreamClient()
    return _client


def _json(body: bytes) -> Any:
    text = body.decode("utf-8").strip()
    return json.loads(text) if text else None


def _headers(function_invocation_id: str | None, trace_parent: str | None = None,
             trace_state: str | None = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if trace_parent:
        headers["traceparent"] = trace_parent
    if trace_state:
        headers["tracestate"] = trace_state
    if function_invocation_id:
        headers["X-Azure-Functions-InvocationId"] = function_invocation_id
    return headers


async def post_async_request(url: str, data: Any = None, trace_parent: str | None = None,
                             trace_state: str | None = None,
                             function_invocation_id: str | None = None) -> list[Any]:
    headers = _headers(function_invocation_id, trace_parent, trace_state)
    body = None
    if data is not None:  # aiohttp's json=None sends no body
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    status, answer = await _stream_client().request("POST", url, body or b"", headers)
    return [status, _json(answer)]


async def get_async_request(url: str, function_invocation_id: str | None = None) -> list[Any]:
    status, answer = await _stream_client().request(
        "GET", url, None, _headers(function_invocation_id))
    data = _json(answer)
    return [status, "" if data is None else data]


async def delete_async_request(url: str,
                               function_invocation_id: str | None = None) -> list[Any]:
    status, answer = await _stream_client().request(
        "DELETE", url, None, _headers(function_invocation_id))
    return [status, _json(answer)]


def install() -> None:
    """Make the SDK's Durable client (clients built from now on) use these functions."""
    module = importlib.import_module(_CLIENT_MODULE)
    vars(module).update(post_async_request=post_async_request,
                        get_async_request=get_async_request,
                        delete_async_request=delete_async_request)


def close() -> None:
    global _client
    if _client is not None:
        _client.close()
        _client = None
