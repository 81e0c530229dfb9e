"""The data-plane REST API (``api-version=2022-06-01``) that servers publish through.

Each request carries ``Authorization: Bearer <JWT>`` signed with the access key whose
``aud`` is the request URL without its query, verified as the service does. Paths
mirror ``{endpoint}/api/hubs/{hub}/...``; sends answer 202, membership changes 200.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from localhost.signalr import protocol, tokens
from localhost.signalr.hub import SignalRService

API_VERSIONS = frozenset({"2021-10-01", "2022-06-01", "2022-11-01", "2023-07-01",
                          "2024-01-01"})
MAX_BODY_BYTES = 1024 * 1024
MAX_NAME_LENGTH = 1024
MAX_TOKEN_MINUTES = 60 * 24


# The service's REST operations: method, path below the endpoint, handler.
ROUTES = tuple(tuple(line.split()) for line in """
GET    /api/health                                              health
GET    /api/v1/auth/accessKey                                   access_key
POST   {base}/:send                                             send_all
POST   {base}/:generateToken                                    generate_token
POST   {base}/users/{user}/:send                                send_user
POST   {base}/groups/{group}/:send                              send_group
POST   {base}/connections/{connection}/:send                    send_connection
PUT    {base}/groups/{group}/connections/{connection}           add_connection
DELETE {base}/groups/{group}/connections/{connection}           remove_connection
DELETE {base}/connections/{connection}/groups                   remove_connection_all
DELETE {base}/connections/{connection}                          close_connection
HEAD   {base}/connections/{connection}                          connection_exists
HEAD   {base}/groups/{group}                                    group_exists
HEAD   {base}/users/{user}                                      user_exists
PUT    {base}/users/{user}/groups/{group}                       add_user
DELETE {base}/users/{user}/groups/{group}                       remove_user
DELETE {base}/users/{user}/groups                               remove_user_all
""".strip().splitlines())

Handler = Callable[["RestApi", web.Request], Awaitable[web.Response]]
# how a send reaches its recipients: (hub, frame, excluded connection ids)
Deliver = Callable[[str, str, set[str]], object]


def _authorized(handler: Handler) -> Handler:
    """Answer the request only when its access token is valid (``_check``)."""
    @functools.wraps(handler)
    async def checked(self: RestApi, request: web.Request) -> web.Response:
        if (problem := self._check(request)) is not None:
            return problem
        response: web.Response = await handler(self, request)
        return response
    return checked


def _change(change: Callable[[SignalRService, UrlMappingMatchInfo, web.Request], object],
            ) -> Handler:
    """A membership change (or a close): 200 whatever the service says."""
    def answer(service: SignalRService, match: UrlMappingMatchInfo,
               request: web.Request) -> None:
        change(service, match, request)
    return _status_only(answer)


def _status_only(
        answer: Callable[[SignalRService, UrlMappingMatchInfo, web.Request], bool | None],
) -> Handler:
    """A call answered by its status alone: 404 when ``answer`` says False (not found),
    else 200 (done, or found)."""
    async def handler(self: RestApi, request: web.Request) -> web.Response:
        found = answer(self.service, request.match_info, request)
        return web.Response(status=404 if found is False else 200)
    return _authorized(handler)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


class RestApi:
    def __init__(self, service: SignalRService, keys: tokens.KeyRing, prefix: str,
                 client_endpoint: str | None = None) -> None:
        self.service = service
        self.keys = keys
        self.prefix = prefix
        # where clients connect, when not beside this API (its own port: localhost.signalr.lean)
        self.client_endpoint = client_endpoint

    def add_routes(self, app: web.Application) -> None:
        for method, path, name in ROUTES:
            path = path.replace("{base}", "/api/hubs/{hub}")
            app.router.add_route(method, f"{self.prefix}{path}", getattr(self, name))

    # checks shared by every call
    def _check(self, request: web.Request) -> web.Response | None:
        version = request.query.get("api-version")
        if version not in API_VERSIONS:
            return _error(400, f"Unsupported api-version {version!r}; use 2022-06-01.")
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        audience = f"{request.scheme}://{request.host}{request.raw_path.split('?')[0]}"
        try:
            tokens.verify(token, self.keys, audience)
        except tokens.TokenError as exc:
            return _error(401, str(exc))
        for name in ("hub", "group", "user", "connection"):
            value = request.match_info.get(name)
            if value is not None and not 0 < len(value) <= MAX_NAME_LENGTH:
                return _error(400, f"'{name}' must be 1 to {MAX_NAME_LENGTH} characters.")
        return None

    async def _frame(self, request: web.Request) -> str | web.Response:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(413, f"Message larger than {MAX_BODY_BYTES} bytes.")
        # read(n) returns what has arrived so far; gather chunks up to one past the limit.
        chunks, size = [], 0
        while size <= MAX_BODY_BYTES:
            chunk = await request.content.read(MAX_BODY_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _error(413, f"Message larger than {MAX_BODY_BYTES} bytes.")
        raw = b"".join(chunks)
        try:
            body: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Body is not valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("target"), str) \
                or not body["target"]:
            return _error(400, "Body must be {\"target\": string, \"arguments\": array}.")
        arguments = body.get("arguments", [])
        if not isinstance(arguments, list):
            return _error(400, "'arguments' must be an array.")
        return protocol.invocation_frame(body["target"], arguments)

    async def _send(self, request: web.Request, deliver: Deliver) -> web.Response:
        if (problem := self._check(request)) is not None:
            return problem
        frame = await self._frame(request)
        if isinstance(frame, web.Response):
            return frame
        deliver(request.match_info["hub"], frame,
                set(request.query.getall("excluded", [])))
        return web.Response(status=202)

    # handlers
    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def send_all(self, request: web.Request) -> web.Response:
        return await self._send(request, self.service.send_all)

    async def send_group(self, request: web.Request) -> web.Response:
        group = request.match_info["group"]
        return await self._send(request, lambda hub, frame, excluded:
                                self.service.send_group(hub, group, frame, excluded))

    async def send_user(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        return await self._send(request, lambda hub, frame, _excluded:
                                self.service.send_user(hub, user, frame))

    async def send_connection(self, request: web.Request) -> web.Response:
        cid = request.match_info["connection"]
        return await self._send(request, lambda hub, frame, _excluded:
                                self.service.send_connection(hub, cid, frame))

    @_authorized
    async def generate_token(self, request: web.Request) -> web.Response:
        """What Azure offers servers without the key (managed identity): a client token."""
        try:
            minutes = int(request.query.get("minutesToExpire", "60"))
        except ValueError:
            return _error(400, "'minutesToExpire' must be an integer.")
        if not 0 < minutes <= MAX_TOKEN_MINUTES:
            return _error(400, f"'minutesToExpire' must be 1 to {MAX_TOKEN_MINUTES}.")
        hub = request.match_info["hub"]
        client = self.client_endpoint or f"{request.scheme}://{request.host}{self.prefix}"
        audience = f"{client}/client/?hub={hub}"
        token = tokens.issue(self.keys.master, audience, user_id=request.query.get("userId"),
                             ttl_seconds=minutes * 60, now=time.time())
        return web.json_response({"token": token})

    async def access_key(self, request: web.Request) -> web.Response:
        """A signing key for a server that authenticates with Microsoft Entra.

        Azure checks an Entra token (role SignalR App Server); offline there is no Entra,
        so the stand-in accepts a bearer JWT signed with the access key for this URL.
        """
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        audience = f"{request.scheme}://{request.host}{request.path}"
        try:
            tokens.verify(token, self.keys.master, audience)
        except tokens.TokenError as exc:
            return _error(401, str(exc))
        kid, key = self.keys.issue()
        return web.json_response({"KeyId": kid, "AccessKey": key})

    @_authorized
    async def add_connection(self, request: web.Request) -> web.Response:
        m = request.match_info
        if not self.service.add_connection_to_group(m["hub"], m["group"], m["connection"]):
            return _error(404, "Connection not found.")
        return web.Response(status=200)

    @_authorized
    async def add_user(self, request: web.Request) -> web.Response:
        ttl_raw = request.query.get("ttl")
        try:
            ttl = None if ttl_raw is None else int(ttl_raw)
        except ValueError:
            return _error(400, "'ttl' must be an integer number of seconds.")
        if ttl is not None and ttl < 0:
            return _error(400, "'ttl' must not be negative.")
        m = request.match_info
        self.service.add_user_to_group(m["hub"], m["group"], m["user"], ttl)
        return web.Response(status=200)

    # calls that change membership (200) or ask whether something exists (200 or 404)
    remove_connection = _change(lambda s, m, r: s.remove_connection_from_group(
        m["hub"], m["group"], m["connection"]))
    remove_connection_all = _change(lambda s, m, r:
                                    s.remove_connection_from_all_groups(m["hub"], m["connection"]))
    close_connection = _change(lambda s, m, r: s.close_connection(
        m["hub"], m["connection"], r.query.get("reason")))
    remove_user = _change(lambda s, m, r: s.remove_user_from_group(
        m["hub"], m["group"], m["user"]))
    remove_user_all = _change(lambda s, m, r: s.remove_user_from_group(
        m["hub"], None, m["user"]))
    connection_exists = _status_only(
        lambda s, m, r: m["connection"] in s.hub(m["hub"]).connections)
    group_exists = _status_only(lambda s, m, r: bool(s.hub(m["hub"]).groups.get(m["group"])))
    user_exists = _status_only(
        lambda s, m, r: bool(s.hub(m["hub"]).user_connections.get(m["user"])))
