"""The client endpoint: ``POST {prefix}/client/negotiate?hub=`` and the WebSocket at
``{prefix}/client/?hub=&id=``, speaking the JSON hub protocol.

The client presents the access token from the app's negotiate function on both requests
(``Authorization: Bearer`` or, as browsers must for WebSockets, ``access_token`` in the
query). Only the WebSockets transport is offered, as the official client prefers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from localhost.signalr import protocol, tokens
from localhost.signalr.hub import Connection, Pending, SignalRService

log = logging.getLogger("localhost.signalr")


@dataclass(frozen=True)
class ClientOptions:
    ping_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    # ASP.NET Core SignalR's default MaximumReceiveMessageSize.
    max_message_bytes: int = 32 * 1024


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


def bearer_token(request: web.Request, *, allow_query: bool) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("access_token", "") if allow_query else ""


def client_audience(request: web.Request, prefix: str, hub: str) -> str:
    return f"{request.scheme}://{request.host}{prefix}/client/?hub={hub}"


class ClientEndpoint:
    def __init__(self, service: SignalRService, keys: tokens.KeyRing, prefix: str,
                 options: ClientOptions) -> None:
        self.service = service
        self.keys = keys
        self.prefix = prefix
        self.options = options

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/client/negotiate", self.negotiate)
        app.router.add_get(f"{self.prefix}/client/", self.websocket)
        app.router.add_get(f"{self.prefix}/client", self.websocket)

    def _authorize(self, request: web.Request, *, allow_query: bool
                   ) -> tokens.Claims | web.Response:
        hub = request.query.get("hub", "")
        if not hub:
            return error_response(400, "The 'hub' query parameter is required.")
        try:
            return tokens.verify(bearer_token(request, allow_query=allow_query),
                                 self.keys, client_audience(request, self.prefix, hub))
        except tokens.TokenError as exc:
            return error_response(401, str(exc))

    async def negotiate(self, request: web.Request) -> web.Response:
        claims = self._authorize(request, allow_query=True)
        if isinstance(claims, web.Response):
            return claims
        hub = request.query["hub"]
        version = request.query.get("negotiateVersion", "0")
        pending = self.service.negotiate(hub, claims.user_id)
        body: dict[str, object] = {
            "connectionId": pending.connection_id,
            "negotiateVersion": 1 if version not in ("", "0") else 0,
            "availableTransports": [
                {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        }
        if body["negotiateVersion"] == 1:
            # v1 separates the public connection id from the secret token used to connect.
            token = pending.connection_id + "." + secrets.token_urlsafe(16)
            body["connectionToken"] = token
        else:
            token = pending.connection_id
        self.service.remember(token, pending)
        return web.json_response(body)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        claims = self._authorize(request, allow_query=True)
        if isinstance(claims, web.Response):
            return claims
        ws = web.WebSocketResponse(max_msg_size=self.options.max_message_bytes,
                                   autoping=True, autoclose=True)
        if not ws.can_prepare(request).ok:
            return error_response(400, "Only the WebSockets transport is supported.")
        connect_id = request.query.get("id")
        pending: Pending | None
        if connect_id is None:
            # skipNegotiation clients (WebSockets only) connect straight away, as the
            # service allows; their connection id is assigned here.
            pending = self.service.negotiate(request.query["hub"], claims.user_id)
        else:
            pending = self.service.claim(connect_id)
        if pending is None:
            return error_response(404, "No connection with that ID.")
        if pending.hub != request.query["hub"].lower() or pending.user_id != claims.user_id:
            return error_response(401, "The access token does not match the negotiation.")
        await ws.prepare(request)
        if not await self._handshake(ws):
            await ws.close()
            return ws
        conn = Connection(pending.connection_id, pending.hub, pending.user_id, ws,
                          request.transport)
        conn.start()
        self.service.attach(conn)
        try:
            await self._read_loop(conn)
        finally:
            # Runs for clean closes and abrupt disconnects alike: no ghost memberships.
            self.service.detach(conn)
            conn.close()
            await conn.wait_closed()
        return ws

    async def _handshake(self, ws: web.WebSocketResponse) -> bool:
        try:
            msg = await ws.receive(timeout=self.options.handshake_timeout)
        except TimeoutError:
            return False
        if msg.type != WSMsgType.TEXT:
            return False
        error = protocol.parse_handshake(msg.data)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(protocol.handshake_error(error) if error else protocol.HANDSHAKE_OK)
        return error is None

    async def _read_loop(self, conn: Connection) -> None:
        ws = conn.ws
        async for msg in ws:
            conn.last_received = time.monotonic()
            if msg.type == WSMsgType.TEXT:
                try:
                    messages = protocol.split_frames(msg.data)
                    for message in messages:
                        if self._handle(conn, message):
                            return
                except protocol.ProtocolError as exc:
                    log.info("signalr: closing %s: %s", conn.id, exc)
                    conn.close(protocol.close_frame(f"Connection closed with an error. {exc}"))
                    return
            elif msg.type == WSMsgType.BINARY:
                conn.close(protocol.close_frame(
                    "Connection closed with an error. Binary frames need the messagepack "
                    "protocol; this connection negotiated json."))
                return
            elif msg.type == WSMsgType.ERROR:
                # e.g. a frame larger than max_message_bytes: aiohttp has closed with 1009.
                log.info("signalr: closing %s: %s", conn.id, ws.exception())
                return

    def _handle(self, conn: Connection, message: dict[str, object]) -> bool:
        """Act on one client message; True when the connection should end."""
        kind = protocol.check_message(message)
        if kind == protocol.CLOSE:
            return True
        if kind in (protocol.INVOCATION, protocol.STREAM_INVOCATION, protocol.STREAM_ITEM):
            # Serverless clients only listen; the service disconnects any that send.
            conn.close(protocol.close_frame(
                "Connection closed with an error. Serverless mode: clients cannot invoke "
                "hub methods."))
            return True
        return False

    async def keepalive(self) -> None:
        """Ping idle clients every ``ping_interval``; drop clients silent past the timeout."""
        opts = self.options
        tick = max(0.05, min(opts.ping_interval, opts.client_timeout) / 3)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for conn in self.service.all_connections():
                if now - conn.last_received > opts.client_timeout:
                    conn.close(protocol.close_frame(
                        "Server timeout elapsed without receiving a message from the client.",
                        allow_reconnect=True))
                    self.service.detach(conn)
                elif now - conn.last_sent >= opts.ping_interval:
                    conn.last_sent = now
                    conn.push(protocol.PING_FRAME)
