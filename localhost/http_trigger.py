"""HTTP triggers: route matching, ``authLevel`` keys, and faithful request/response mapping.

Requests under the route prefix (``host.json`` ``extensions.http.routePrefix``, default
``api``) are matched against every function's route template; a path that matches but
with the wrong method is 405 (with ``Allow``), no match is 404. The function receives a
``func.HttpRequest`` built from the raw request and its answer (``$return`` or an ``http``
``func.Out``) becomes the response. An unhandled exception is a 500 whose body says only
that it failed; the traceback goes to the log. A GET whose caller disconnects has its
invocation cancelled (see ``_cancel_when_caller_leaves``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from localhost.functions import FunctionInfo
from localhost.invocation import InvocationResult
from localhost.keys import HostKeys, presented_key
from localhost.problems import problem
from localhost.routing import RouteTemplate, RouteTemplateError

log = logging.getLogger("localhost.http")

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
Invoke = Callable[[FunctionInfo, Any], Awaitable[InvocationResult]]


@dataclass
class HttpRoute:
    fn: FunctionInfo
    template: RouteTemplate
    methods: frozenset[str]
    auth_level: str


def build_routes(functions: list[FunctionInfo], default_auth: str = "function",
                 on_error: Callable[[FunctionInfo, str], None] | None = None) -> list[HttpRoute]:
    """Routes of every ``httpTrigger`` function, most specific first.

    A template that cannot be parsed is reported through ``on_error`` and left out.
    """
    routes = []
    for fn in functions:
        if fn.trigger_type != "httpTrigger":
            continue
        try:
            template = RouteTemplate(str(fn.trigger.get("route") or fn.name))
        except RouteTemplateError as exc:
            if on_error is None:
                raise
            on_error(fn, str(exc))
            continue
        methods = fn.trigger.get("methods") or ALL_METHODS
        routes.append(HttpRoute(
            fn=fn, template=template, methods=frozenset(str(m).upper() for m in methods),
            auth_level=str(fn.trigger.get("authLevel") or default_auth).lower()))
    routes.sort(key=lambda r: r.template.precedence)
    return routes


class HttpTriggerDispatcher:
    """Serves ``/<prefix>/...`` from the routes; one instance per host."""

    def __init__(self, routes: list[HttpRoute], keys: HostKeys, invoke: Invoke,
                 route_prefix: str, custom_headers: dict[str, str] | None = None) -> None:
        self.routes = routes
        self.keys = keys
        self.invoke = invoke
        self.prefix = route_prefix.strip("/")
        self.custom_headers = custom_headers or {}  # host.json extensions.http.customHeaders
        self.closed = False
        self.active: set[asyncio.Task[Any]] = set()

    async def drain(self, timeout: float) -> None:
        """Refuse new requests (503), let the ones being served finish for ``timeout``
        seconds, then cancel the rest (async functions stop at their next ``await``, e.g.
        a long poll; their callers get 503 and retry, as after any restart)."""
        self.closed = True
        if not self.active:
            return
        _done, pending = await asyncio.wait(set(self.active), timeout=timeout)
        for invocation in pending:
            invocation.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def route_path(self, path: str) -> str | None:
        """The part of ``path`` after the prefix, or ``None`` if outside it."""
        if not self.prefix:
            return path
        head = "/" + self.prefix
        if path.lower() == head.lower():
            return ""
        if path.lower().startswith(head.lower() + "/"):
            return path[len(head) + 1:]
        return None

    def match(self, method: str, tail: str) -> tuple[HttpRoute, dict[str, str]] | set[str] | None:
        """The route and params, or the allowed methods if only the method is wrong."""
        allowed: set[str] = set()
        for route in self.routes:
            params = route.template.match(tail)
            if params is None:
                continue
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, params
            allowed |= route.methods
        return allowed or None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._handle(request)
        for name, value in self.custom_headers.items():
            response.headers.setdefault(name, str(value))
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        tail = self.route_path(request.path)
        found = None if tail is None else self.match(request.method, tail)
        if found is None:
            return problem(404, "Not found", f"no function serves {request.path}")
        if isinstance(found, set):
            return problem(405, "Method not allowed",
                           f"{request.method} is not allowed on {request.path}",
                           headers={"Allow": ", ".join(sorted(found))})
        route, params = found
        if self.closed:
            return problem(503, "Service unavailable", "the host is shutting down",
                           headers={"Retry-After": "5"})
        if not self.keys.authorizes(route.auth_level, presented_key(request.headers,
                                                                    request.query)):
            return problem(401, "Unauthorized",
                           f"function {route.fn.name} requires a {route.auth_level} key "
                           "(x-functions-key header or code query parameter)")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            return problem(413, "Payload too large", str(exc.text or "request body too large"))
        http_request = to_function_request(request, body, params)
        invocation = asyncio.ensure_future(self.invoke(route.fn, http_request))
        self.active.add(invocation)
        invocation.add_done_callback(self.active.discard)
        watcher = None
        if request.method in SAFE_METHODS:
            watcher = asyncio.ensure_future(_cancel_when_caller_leaves(request, invocation))
        try:
            result = await invocation
        except asyncio.CancelledError:
            if watcher is not None and watcher.done() and not watcher.cancelled() \
                    and watcher.result():
                # nobody is left to read this answer (the status is for the access log)
                return problem(499, "Client closed request", "the caller went away")
            if not (self.closed and invocation.cancelled()):
                raise
            return problem(503, "Service unavailable",
                           "the host shut down while the function was running",
                           headers={"Retry-After": "5"})
        except Exception:
            log.exception("function %s failed", route.fn.name)
            if watcher is not None:
                watcher.cancel()
            return problem(500, "Internal server error",
                           f"function {route.fn.name} raised an unhandled exception; "
                           "see the host log")
        if watcher is not None:
            watcher.cancel()
        try:
            return to_web_response(route.fn, result)
        except (TypeError, ValueError) as exc:
            log.error("function %s returned an unusable response: %s", route.fn.name, exc)
            return problem(500, "Internal server error",
                           f"function {route.fn.name} returned an unusable response")


# How often a held GET checks that its caller is still connected.
CALLER_CHECK_SECONDS = 1.0
SAFE_METHODS = frozenset({"GET", "HEAD"})


async def _cancel_when_caller_leaves(request: web.Request,
                                     invocation: asyncio.Future[Any]) -> bool:
    """Cancel a GET's invocation once its caller has disconnected; True if it did.

    Like ASP.NET's ``RequestAborted``, an async function then stops at its next
    ``await``: a long poll whose caller died (or whose proxy cut it) must not go on to
    take work nobody will receive. Only safe methods are cancelled: a POST's effects are
    carried through even when its caller stopped listening.
    """
    while not invocation.done():
        await asyncio.sleep(CALLER_CHECK_SECONDS)
        gone = request.transport is None or request.transport.is_closing()
        if gone and not invocation.done():
            invocation.cancel()
            return True
    return False


def to_function_request(request: web.Request, body: bytes,
                        route_params: dict[str, str]) -> func.HttpRequest:
    """``func.HttpRequest`` as the worker builds it: repeated headers/query values joined."""
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        lower = key.lower()
        headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
    params: dict[str, str] = {}
    for key, value in request.query.items():
        params[key] = f"{params[key]},{value}" if key in params else value
    return func.HttpRequest(method=request.method, url=str(request.url), headers=headers,
                            params=params, route_params=route_params, body=body)


def _response_value(fn: FunctionInfo, result: InvocationResult) -> Any:
    """The ``$return`` value, or the ``http`` output binding set through ``func.Out``."""
    for binding in fn.output_bindings():
        if binding.get("type") == "http" and binding.get("name") in result.outputs:
            return result.outputs[binding["name"]]
    return result.return_value


def to_web_response(fn: FunctionInfo, result: InvocationResult) -> web.Response:
    value = _response_value(fn, result)
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str):
        return web.Response(status=200, text=value, content_type="text/plain")
    if isinstance(value, (bytes, bytearray)):
        return web.Response(status=200, body=bytes(value),
                            content_type="application/octet-stream")
    if not isinstance(value, func.HttpResponse):
        raise TypeError(f"expected HttpResponse, str or bytes, got {type(value).__name__}")
    headers: CIMultiDict[str] = CIMultiDict()
    for key, header_value in value.headers.items():
        headers.add(key, header_value)
    if "content-type" not in headers and value.get_body():
        mimetype = value.mimetype or "text/plain"
        headers["Content-Type"] = (f"{mimetype}; charset={value.charset}"
                                   if value.charset and _is_text(mimetype) else mimetype)
    status = int(value.status_code)
    if status < 100 or status > 599:
        raise ValueError(f"invalid status code {status}")
    body = value.get_body()
    if status in (204, 304) or not body:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, body=body, headers=headers)


def _is_text(mimetype: str) -> bool:
    return mimetype.startswith("text/") or mimetype.endswith(("json", "xml", "javascript"))
