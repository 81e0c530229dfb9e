"""CORS for the client endpoint, so a page on another origin can negotiate with cookies.

The official client sends ``withCredentials: true`` by default, which browsers accept only
when the response names the page's origin explicitly (never ``*``) and allows
credentials. Like the service's default (``*``), any origin is allowed unless a list is
given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALLOW_HEADERS = "authorization, content-type, x-requested-with, x-signalr-user-agent"


def cors_middleware(prefix: str, origins: frozenset[str] | None) -> Middleware:
    def allowed(origin: str) -> bool:
        return origins is None or origin in origins

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not request.path.startswith(f"{prefix}/client") or not origin:
            return await handler(request)
        if request.method == "OPTIONS":
            if not allowed(origin):
                return web.Response(status=403)
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", ALLOW_HEADERS),
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            })
        response = await handler(request)
        if allowed(origin) and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    return middleware
