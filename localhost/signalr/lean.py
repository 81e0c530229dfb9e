"""The REST API on a port of its own, read by a small HTTP/1.1 protocol instead of aiohttp.

Servers publish through the REST API several times per task, and aiohttp's server (request
objects, routing, middlewares, response preparation) cost more CPU per publish than the
emulation's handling of it. Azure's connection string names the REST endpoint
(``Endpoint``) and the client endpoint (``ClientEndpoint``) separately, so the extension
points the app's ``Endpoint`` here and its ``ClientEndpoint`` at the host's ``/signalr``
(negotiate, WebSockets), which also keeps serving the REST API for everyone else.

The handlers are ``RestApi``'s own, given a request object with what they read (method,
path parameters, query, headers, body, host); only the transport differs. Requests need a
``Content-Length`` (what Azure's SDKs and ``shared.realtime`` send); a chunked body is
answered 411. Requests on one connection are answered in order (pipelining included);
``Connection: close`` and HTTP/1.0 close after the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Awaitable, Callable, Coroutine, Generator
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from localhost.signalr.rest import MAX_BODY_BYTES, ROUTES, RestApi

MAX_HEAD_BYTES = 16 * 1024
_SEGMENT = re.compile(r"\\{(\w+)\\}")
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _pattern(path: str) -> re.Pattern[str]:
    path = path.replace("{base}", "/api/hubs/{hub}")
    return re.compile("^" + _SEGMENT.sub(r"(?P<\1>[^/]+)", re.escape(path)) + "$")


class _Body:
    """``request.content`` for a body that has fully arrived."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data)
        chunk, self._data = self._data[:n], self._data[n:]
        return chunk


class LeanRequest:
    """What ``RestApi``'s handlers read of an aiohttp request."""

    scheme = "http"

    def __init__(self, method: str, target: str, headers: CIMultiDict[str], body: bytes,
                 match_info: dict[str, str]) -> None:
        self.method = method
        self.raw_path = target
        path, _, query = target.partition("?")
        self.path = unquote(path)
        self.headers = headers
        self.host = headers.get("Host", "")
        self.match_info = match_info
        self.content_length = len(body)
        self.content = _Body(body)
        self._query = query
        self._parsed: MultiDict[str] | None = None

    @property
    def query(self) -> MultiDict[str]:
        if self._parsed is None:
            parsed: MultiDict[str] = MultiDict()
            for item in self._query.split("&"):
                if item:
                    name, _, value = item.partition("=")
                    parsed.add(unquote(name.replace("+", " ")), unquote(value.replace("+", " ")))
            self._parsed = parsed
        return self._parsed


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LeanRestProtocol(asyncio.Protocol):
    def __init__(self, routes: list[tuple[str, re.Pattern[str], Handler]],
                 live: set[LeanRestProtocol]) -> None:
        self._routes = routes
        self._live = live
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._busy = False  # a handler suspended: later requests wait for it
        self._discard = 0  # bytes of a refused body still to read before closing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._live.discard(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._discard:  # the rest of a refused body: read it so the client reads the answer
            self._discard = max(0, self._discard - len(data))
            if not self._discard:
                self.close()
            return
        self._buffer += data
        if not self._busy:
            self._serve()

    def _serve(self) -> None:
        while self._transport is not None and not self._busy:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._reply(431, b"", close=True)
                return
            try:
                head = self._buffer[:end].decode("latin-1")
                request_line, *lines = head.split("\r\n")
                method, target, version = request_line.split(" ")
                headers: CIMultiDict[str] = CIMultiDict()
                for line in lines:
                    name, sep, value = line.partition(":")
                    if not sep:
                        raise ValueError(line)
                    headers.add(name.strip(), value.strip())
                length = int(headers.get("Content-Length", "0"))
            except ValueError:
                self._reply(400, b"", close=True)
                return
            if "chunked" in headers.get("Transfer-Encoding", "").lower():
                self._reply(411, b"", close=True)
                return
            if length > MAX_BODY_BYTES:
                # answer now, then read (and drop) the body before closing: a client still
                # sending would otherwise see a reset instead of the answer
                self._discard = length - (len(self._buffer) - end - 4)
                self._buffer = b""
                self._reply(413, _error(413, f"Message larger than {MAX_BODY_BYTES} bytes."),
                            close=self._discard <= 0, json=True, closing=True)
                return
            if len(self._buffer) < end + 4 + length:
                return  # the rest of the body is still coming
            body = self._buffer[end + 4:end + 4 + length]
            self._buffer = self._buffer[end + 4 + length:]
            close = version != "HTTP/1.1" or \
                "close" in headers.get("Connection", "").lower()
            self._dispatch(method, target, headers, body, close)

    def _dispatch(self, method: str, target: str, headers: CIMultiDict[str], body: bytes,
                  close: bool) -> None:
        path = target.partition("?")[0]
        handler: Handler | None = None
        allowed = False
        match_info: dict[str, str] = {}
        for route_method, pattern, route_handler in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            allowed = True
            if route_method == method:
                handler = route_handler
                match_info = {k: unquote(v) for k, v in found.groupdict().items()}
                break
        if handler is None:
            status = 405 if allowed else 404
            self._reply(status, b"", close=close)
            return
        request = LeanRequest(method, target, headers, body, match_info)
        coro = cast(Coroutine[Any, Any, web.StreamResponse],
                    handler(cast(web.Request, request)))
        try:
            first = coro.send(None)  # the handlers finish without waiting: no task needed
        except StopIteration as done:
            self._respond(done.value, close)
            return
        except Exception:
            self._reply(500, b"", close=True)
            return
        self._busy = True  # it waits after all: finish it as a task, then go on in order
        waiting = asyncio.ensure_future(_Continue(coro, first))
        waiting.add_done_callback(lambda finished: self._finished(finished, close))

    def _finished(self, finished: asyncio.Future[web.StreamResponse], close: bool) -> None:
        self._busy = False
        if finished.cancelled() or finished.exception() is not None:
            self._reply(500, b"", close=True)
            return
        self._respond(finished.result(), close)
        self._serve()

    def _respond(self, response: web.StreamResponse, close: bool) -> None:
        body = getattr(response, "body", None)
        data = body if isinstance(body, bytes) else b""
        self._reply(response.status, data, close=close,
                    json=response.content_type == "application/json")

    def _reply(self, status: int, body: bytes, *, close: bool, json: bool = False,
               closing: bool = False) -> None:
        if self._transport is None:
            return
        kind = "Content-Type: application/json; charset=utf-8\r\n" if json else ""
        extra = "Connection: close\r\n" if close or closing else ""
        self._transport.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n{kind}{extra}"
            f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
        if close:
            self._transport.close()
            self._transport = None


class _Continue:
    """Await the rest of a coroutine already started with ``send(None)``, which yielded
    ``first`` (what it waits for) to whoever drives it: now the task that awaits this."""

    def __init__(self, coro: Coroutine[Any, Any, web.StreamResponse], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, web.StreamResponse]:
        yielded = self._first
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # cancellation (or a failed wait) goes inside
                try:
                    yielded = self._coro.throw(exc)
                except StopIteration as done:
                    return cast(web.StreamResponse, done.value)
                continue
            try:
                yielded = self._coro.send(value)
            except StopIteration as done:
                return cast(web.StreamResponse, done.value)


def _error(status: int, message: str) -> bytes:
    import json

    return json.dumps({"code": status, "message": message}).encode()


class LeanRestServer:
    """Listens from construction (so its URL can go into the connection string before the
    event loop serves it) and serves once ``start`` runs."""

    def __init__(self, api: RestApi, host: str = "127.0.0.1") -> None:
        self._sock = socket.create_server((host, 0))
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, _pattern(path), getattr(api, name)) for method, path, name in ROUTES]
        self._server: asyncio.Server | None = None
        self._live: set[LeanRestProtocol] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: LeanRestProtocol(self._routes, self._live), sock=self._sock)

    async def stop(self) -> None:
        """Stop listening and close the connections (idle keep-alives; clients reconnect)."""
        if self._server is not None:
            self._server.close()
            for protocol in list(self._live):
                protocol.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        self._sock.close()
