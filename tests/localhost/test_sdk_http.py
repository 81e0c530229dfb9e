"""localhost.sdk_http: a worker's Durable client calls, without aiohttp's client, give the
SDK what its own functions gave (status and parsed body) for the same requests."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.durable_functions.models.utils import http_utils

from localhost import sdk_http
from localhost.durable import release_client_session


async def _serve(seen: list[dict[str, Any]]) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append({"method": request.method, "path": request.path_qs,
                     "body": await request.read(),
                     "headers": {k: v for k, v in request.headers.items()
                                 if k.lower() in ("traceparent", "tracestate", "content-type",
                                                  "x-azure-functions-invocationid")}})
        kind = request.match_info["kind"]
        if kind == "json":
            return web.json_response({"id": "i-1", "n": [1, 2]}, status=202)
        if kind == "empty":
            return web.Response(status=200)
        if kind == "chunked":
            response = web.StreamResponse(status=200)
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b'{"a": ')
            await response.write(b'"b"}')
            await response.write_eof()
            return response
        return web.json_response({"message": "No instance with ID x"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/runtime/{kind}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/runtime"


CALLS: list[tuple[str, str, tuple[Any, ...]]] = [
    ("post_async_request", "json?code=k", ({"input": [1]}, "00-tp-01", "ts=1", "inv-1")),
    ("post_async_request", "empty", (None,)),
    ("get_async_request", "empty", ("inv-2",)),
    ("get_async_request", "chunked", ()),
    ("get_async_request", "missing", ()),
    ("delete_async_request", "json", ()),
]


def test_answers_and_requests_match_the_sdks_own_functions() -> None:
    async def scenario() -> None:
        seen: list[dict[str, Any]] = []
        runner, base = await _serve(seen)
        try:
            for name, path, args in CALLS:
                ours = await getattr(sdk_http, name)(f"{base}/{path}", *args)
                theirs = await getattr(http_utils, name)(f"{base}/{path}", *args)
                assert ours == theirs, name
                mine, sdk = seen[-2], seen[-1]
                assert mine["method"] == sdk["method"] and mine["path"] == sdk["path"]
                if sdk["body"]:  # (aiohttp labels an empty POST octet-stream; no matter)
                    assert mine["headers"] == sdk["headers"]
                else:
                    assert mine["headers"] == {k: v for k, v in sdk["headers"].items()
                                               if k != "Content-Type"}
                assert (json.loads(mine["body"]) if mine["body"] else None) == \
                    (json.loads(sdk["body"]) if sdk["body"] else None)
        finally:
            sdk_http.close()
            await release_client_session()
            await runner.cleanup()
    asyncio.run(scenario())


def test_a_closed_keep_alive_connection_is_replaced_and_a_dead_host_raises() -> None:
    async def scenario() -> None:
        accepted = 0

        async def answer_once(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')
            await writer.drain()
            writer.close()  # without saying so: the client finds out on its next request

        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
        try:
            assert await sdk_http.get_async_request(url) == [200, {}]
            assert await sdk_http.get_async_request(url) == [200, {}]
            assert accepted == 2
        finally:
            server.close()
            await server.wait_closed()
        with pytest.raises(aiohttp.ClientConnectionError):
            await sdk_http.get_async_request(url)
        sdk_http.close()
    asyncio.run(scenario())


def test_install_points_the_sdk_client_at_these_functions() -> None:
    module = importlib.import_module("azure.durable_functions.models.DurableOrchestrationClient")
    saved = {n: getattr(module, n) for n in
             ("post_async_request", "get_async_request", "delete_async_request")}
    try:
        sdk_http.install()
        assert vars(module)["post_async_request"] is sdk_http.post_async_request
        assert vars(module)["get_async_request"] is sdk_http.get_async_request
    finally:
        vars(module).update(saved)
