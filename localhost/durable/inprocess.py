"""The app's Durable client calls the engine in-process instead of over loopback HTTP.

``DurableOrchestrationClient`` (the SDK) reaches the Durable extension through the URLs of
its binding, which the local host points at itself: every ``start_new``, ``raise_event``
or ``get_status`` cost an aiohttp client request and a server request in the same
interpreter. While a host runs, the SDK's three request functions are wrapped: a request
to that host's own Durable HTTP API, made on the host's event loop (async functions run
there), is routed by the host's router to the very same handler, as a request object
with no socket behind it, and the handler's response becomes the ``[status, body]`` the
SDK expects. Anything else (another host, another loop, any other URL) goes over HTTP as
before, and the HTTP API itself is still served for everyone else.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from localhost.durable.http_api import RPC_PREFIX, WEBHOOK_PREFIX

_CLIENT_MODULE = "azure.durable_functions.models.DurableOrchestrationClient"
_FUNCTIONS = ("post_async_request", "get_async_request", "delete_async_request")
_hosts: dict[str, tuple[web.Application, asyncio.AbstractEventLoop]] = {}
_original: dict[str, Callable[..., Awaitable[list[Any]]]] = {}


def register(base_url: str, app: web.Application, loop: asyncio.AbstractEventLoop) -> None:
    """Route this host's own Durable API calls in-process (until ``unregister``)."""
    module = importlib.import_module(_CLIENT_MODULE)
    if not _original:
        for name in _FUNCTIONS:
            _original[name] = getattr(module, name)
        replacements = {"post_async_request": _post, "get_async_request": _get,
                        "delete_async_request": _delete}
        vars(module).update(replacements)
    _hosts[_origin(base_url)] = (app, loop)


def unregister(base_url: str) -> None:
    _hosts.pop(_origin(base_url), None)
    if not _hosts and _original:
        module = importlib.import_module(_CLIENT_MODULE)
        for name, fn in _original.items():
            setattr(module, name, fn)
        _original.clear()


def _origin(url: str) -> str:
    return str(URL(url).origin())


def _local(url: str) -> tuple[web.Application, URL] | None:
    target = URL(url)
    if not target.path.startswith((RPC_PREFIX, WEBHOOK_PREFIX)):
        return None
    found = _hosts.get(str(target.origin()))
    if found is None:
        return None
    app, loop = found
    try:
        if asyncio.get_running_loop() is not loop:
            return None
    except RuntimeError:
        return None
    return app, target


async def _post(url: str, data: Any = None, trace_parent: str | None = None,
                trace_state: str | None = None,
                function_invocation_id: str | None = None) -> list[Any]:
    local = _local(url)
    if local is None:
        return await _original["post_async_request"](url, data, trace_parent, trace_state,
                                                     function_invocation_id)
    return await _dispatch(*local, "POST", data)


async def _get(url: str, function_invocation_id: str | None = None) -> list[Any]:
    local = _local(url)
    if local is None:
        return await _original["get_async_request"](url, function_invocation_id)
    return await _dispatch(*local, "GET", None)


async def _delete(url: str, function_invocation_id: str | None = None) -> list[Any]:
    local = _local(url)
    if local is None:
        return await _original["delete_async_request"](url, function_invocation_id)
    return await _dispatch(*local, "DELETE", None)


class _Connection:
    """What a request (and its body stream) may ask of the connection it came on: a
    loopback peer, no TLS, no flow control to apply (the body is already complete)."""

    max_field_size = 8190
    max_line_length = 8190
    max_headers = 128
    ssl_context = None
    peername = sockname = ("127.0.0.1", 0)
    writer = None
    _reading_paused = False

    def __init__(self) -> None:
        self.transport = self

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peername, "sockname": self.sockname}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self, *args: Any, **kwargs: Any) -> None: ...

    def resume_reading(self, *args: Any, **kwargs: Any) -> None: ...


async def _dispatch(app: web.Application, url: URL, method: str, data: Any) -> list[Any]:
    """Run the request through the router and its handler, as the server would."""
    loop = asyncio.get_running_loop()
    connection = _Connection()
    headers = CIMultiDict({"Host": url.raw_authority})
    payload: StreamReader = EMPTY_PAYLOAD
    if method == "POST" and data is not None:  # the SDK posts json=data (none: no body)
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        payload = StreamReader(connection, 2**16, loop=loop)  # type: ignore[arg-type]  # a stand-in protocol: only its transport is read
        payload.feed_data(body)
        payload.feed_eof()
    path = str(url.relative())
    message = RawRequestMessage(
        method, path, HttpVersion11, CIMultiDictProxy(headers),
        tuple((k.encode(), v.encode()) for k, v in headers.items()),
        False, None, False, False, URL(path))
    request = web.Request(message, payload, connection, None, None,  # type: ignore[arg-type]  # stand-in protocol
                          loop)
    match = await app.router.resolve(request)
    match.add_app(app)
    match.freeze()
    request._match_info = match  # what the server's request handler sets
    try:
        response = await match.handler(request)
    except web.HTTPException as exc:  # raised rather than returned, as the server allows
        response = exc
    text = response.text if isinstance(response, web.Response) else None
    try:
        value = json.loads(text) if text else None
    except ValueError:
        value = text
    return [response.status, value]
