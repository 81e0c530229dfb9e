"""A minimal SignalR JSON-protocol client over aiohttp, for tests and the benchmark.

It follows the official client's steps exactly (negotiate with the access token, open the
WebSocket with ``id`` and ``access_token``, handshake, 0x1E-separated records), and keeps
every received invocation so tests can assert on order and absence.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

RS = "\x1e"


class HubClient:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url
        self.token = token
        self.connection_id = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.invocations: asyncio.Queue[tuple[str, list[Any]]] = asyncio.Queue()
        self.other: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def negotiate(self) -> dict[str, Any]:
        base, _, query = self.url.partition("?")
        url = f"{base.rstrip('/')}/negotiate?{query}&negotiateVersion=1"
        async with self.session.post(url, headers={"Authorization": f"Bearer {self.token}"}
                                     ) as resp:
            resp.raise_for_status()
            return dict(await resp.json())

    async def connect(self) -> HubClient:
        info = await self.negotiate()
        self.connection_id = info["connectionId"]
        ws_url = self.url.replace("http", "ws", 1) + "&" + urlencode(
            {"id": info["connectionToken"], "access_token": self.token})
        self.ws = await self.session.ws_connect(ws_url, autoping=True)
        await self.ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
        reply = await self.ws.receive(timeout=5)
        if reply.data != "{}" + RS:
            raise RuntimeError(f"handshake refused: {reply.data!r}")
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            for part in msg.data.split(RS)[:-1]:
                message = json.loads(part)
                if message.get("type") == 1:
                    self.invocations.put_nowait((message["target"], message["arguments"]))
                else:
                    self.other.append(message)
        self.closed.set()

    async def next(self, timeout: float = 5.0) -> tuple[str, list[Any]]:
        return await asyncio.wait_for(self.invocations.get(), timeout)

    async def send_raw(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
