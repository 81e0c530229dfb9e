"""Serve our HTTP functions on the test server's aiohttp app, the way the Functions host
would (method, URL, headers, route params, body → ``func.HttpRequest``), so clients reach
``/api/negotiate`` and ``/api/realtime/groups/{group}`` without the full local host."""

from __future__ import annotations

import asyncio
from typing import Any

import azure.functions as func
from aiohttp import web

from functions.http import realtime as realtime_fn


def _handler(fn: Any) -> Any:
    user_function = fn.build().get_user_function()

    async def handle(request: web.Request) -> web.Response:
        req = func.HttpRequest(request.method, str(request.url),
                               headers=dict(request.headers),
                               params=dict(request.query),
                               route_params=dict(request.match_info),
                               body=await request.read())
        resp: func.HttpResponse = await asyncio.to_thread(user_function, req)
        return web.Response(status=resp.status_code, body=resp.get_body(),
                            headers={"Content-Type": resp.mimetype or "application/json"})
    return handle


def add_realtime_functions(app: web.Application) -> None:
    app.router.add_post("/api/negotiate", _handler(realtime_fn.negotiate))
    group = _handler(realtime_fn.realtime_group)
    app.router.add_post("/api/realtime/groups/{group}", group)
    app.router.add_delete("/api/realtime/groups/{group}", group)
