"""``SignalRExtension``: the Azure SignalR Service (serverless mode) inside the local host.

``bind`` mounts the service under ``{host.base_url}/signalr``:

- client endpoint: ``POST /signalr/client/negotiate?hub=H`` and the WebSocket
  ``/signalr/client/?hub=H&id=...``
- REST API: ``/signalr/api/hubs/{hub}/...?api-version=2022-06-01``

and, unless the environment already names a service, points the app at it by setting
``AzureSignalRConnectionString=Endpoint=http://127.0.0.1:{rest port};ClientEndpoint=
{base_url}/signalr;AccessKey=...;Version=1.0;`` (the key is generated once under
``{state_dir}/signalr/``). The app reads its settings at start-up, not import, so setting
it during ``bind`` is early enough.

``Endpoint`` is the REST API again, served on a loopback port of its own by
``localhost.signalr.lean`` (less CPU per publish than aiohttp; ``lean_rest=False`` turns
it off and ``Endpoint`` is ``{base_url}/signalr``); ``ClientEndpoint`` is where Azure's
connection strings put a separate client address, so negotiate and the WebSockets stay
under ``/signalr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localhost.signalr import protocol, tokens
from localhost.signalr.client import ClientEndpoint, ClientOptions
from localhost.signalr.cors import cors_middleware
from localhost.signalr.hub import SignalRService
from localhost.signalr.lean import LeanRestServer
from localhost.signalr.rest import RestApi

if TYPE_CHECKING:
    from localhost.host import Host

CONNECTION_SETTING = "AzureSignalRConnectionString"


class SignalRExtension:
    name = "signalr"

    def __init__(self, *, prefix: str = "/signalr", options: ClientOptions | None = None,
                 cors_origins: Iterable[str] | None = None,
                 set_connection_setting: bool = True, lean_rest: bool = True) -> None:
        self.prefix = prefix.rstrip("/")
        self.options = options or ClientOptions()
        self.cors_origins = None if cors_origins is None else frozenset(cors_origins)
        self.set_connection_setting = set_connection_setting
        self.service = SignalRService()
        self.metrics = self.service.metrics
        self.access_key = ""
        self.endpoint = ""
        self.client: ClientEndpoint | None = None
        self.lean_rest = lean_rest
        self.rest: LeanRestServer | None = None
        self._keepalive: asyncio.Task[None] | None = None

    def bind(self, host: Host) -> None:
        self.configure(host.extension_config(self.name))
        self.attach(host.web, base_url=host.base_url, state_dir=Path(host.state_dir),
                    set_env=host.set_env)

    def attach(self, app: web.Application, *, base_url: str, state_dir: Path,
               set_env: Callable[[str, str], None] | None = None) -> None:
        """Mount on any aiohttp app (``bind`` for the host; tests use it directly)."""
        self.access_key = tokens.load_or_create_access_key(state_dir)
        self.endpoint = base_url.rstrip("/") + self.prefix
        keys = tokens.KeyRing(self.access_key)
        configured = self.set_connection_setting and bool(os.environ.get(CONNECTION_SETTING))
        if self.lean_rest and self.rest is None and not configured:
            # the app publishes here (unless it is pointed at a service of its own)
            self.rest = LeanRestServer(RestApi(self.service, keys, "",
                                               client_endpoint=self.endpoint))
        if self.set_connection_setting and not os.environ.get(CONNECTION_SETTING):
            # The host restores the previous value on stop; bare aiohttp apps just set it.
            (set_env or os.environ.__setitem__)(CONNECTION_SETTING, self.connection_string)
        app.middlewares.append(cors_middleware(self.prefix, self.cors_origins))
        self.client = ClientEndpoint(self.service, keys, self.prefix, self.options)
        self.client.add_routes(app)
        RestApi(self.service, keys, self.prefix).add_routes(app)

    def configure(self, config: dict[str, Any]) -> None:
        """Apply ``host.json`` ``extensions.signalr`` settings given when built bare:
        ``pingIntervalSeconds``, ``clientTimeoutSeconds``, ``maxMessageBytes``,
        ``corsOrigins`` (list; absent = any origin, like the service's ``*``)."""
        names = {"pingIntervalSeconds": "ping_interval", "clientTimeoutSeconds":
                 "client_timeout", "maxMessageBytes": "max_message_bytes"}
        changes = {attr: type(getattr(self.options, attr))(config[key])
                   for key, attr in names.items() if key in config}
        if changes:
            self.options = replace(self.options, **changes)
        if isinstance(config.get("corsOrigins"), list) and self.cors_origins is None:
            self.cors_origins = frozenset(str(o) for o in config["corsOrigins"])

    @property
    def connection_string(self) -> str:
        if self.rest is None:
            return tokens.connection_string(self.endpoint, self.access_key)
        return tokens.connection_string(self.rest.url, self.access_key,
                                        client_endpoint=self.endpoint)

    async def start(self) -> None:
        if self.client is None:
            raise RuntimeError("SignalRExtension.start() before bind()")
        self._keepalive = asyncio.get_running_loop().create_task(self.client.keepalive())
        if self.rest is not None:
            await self.rest.start()

    async def stop(self) -> None:
        if self.rest is not None:
            await self.rest.stop()
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        conns = self.service.all_connections()
        for conn in conns:
            # Tell clients the server is going away; they may reconnect to the next host.
            conn.close(protocol.close_frame("Server is shutting down.", allow_reconnect=True))
            self.service.detach(conn)
        await asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True)
