"""The service core: live connections, groups, user memberships, and fan-out.

A publish encodes its WebSocket frame once and writes those bytes straight into each
recipient's socket buffer (no await, no task switch per recipient), so one slow or dead
client never delays the others. Only when a connection already has output waiting does a
frame go to its queue, drained by its own writer task; frames queued together leave as one
WebSocket frame (the JSON hub protocol allows several records per frame). A client whose
backlog grows past the limit is closed, as the real service drops clients that cannot
keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from localhost.signalr import protocol

log = logging.getLogger("localhost.signalr")
MAX_PENDING_BYTES = 4 * 1024 * 1024


_HEADER1, _HEADER2, _HEADER3 = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")


class Frame:
    """One outgoing text message, encoded as a WebSocket frame at most once however many
    connections it goes to (server frames are unmasked, so the bytes are shared)."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            payload = self.text.encode()
            n = len(payload)
            if n < 126:
                header = _HEADER1.pack(0x81, n)
            elif n < 65536:
                header = _HEADER2.pack(0x81, 126, n)
            else:
                header = _HEADER3.pack(0x81, 127, n)
            self._wire = header + payload
        return self._wire


class Connection:
    """One WebSocket client after a successful handshake."""

    def __init__(self, connection_id: str, hub: str, user_id: str | None,
                 ws: web.WebSocketResponse, transport: asyncio.Transport | None = None
                 ) -> None:
        self.id = connection_id
        self.transport = transport
        self._writing = False
        self.hub = hub
        self.user_id = user_id
        self.ws = ws
        self.groups: set[str] = set()
        self.last_received = time.monotonic()
        self.last_sent = time.monotonic()
        self.closed = False
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def push(self, frame: str | Frame) -> bool:
        """Send or queue a frame; False when the connection is gone or was dropped."""
        if self.closed:
            return False
        transport = self.transport
        if not self._pending and not self._writing and transport is not None:
            # Fast path, the common case: nothing queued, so write the shared frame bytes
            # straight to the socket buffer, with no task switch per recipient.
            if transport.is_closing():
                return False
            if transport.get_write_buffer_size() <= MAX_PENDING_BYTES:
                transport.write(frame.wire if isinstance(frame, Frame) else
                                Frame(frame).wire)
                self.last_sent = time.monotonic()
                return True
        text = frame.text if isinstance(frame, Frame) else frame
        self._pending.append(text)
        self._pending_bytes += len(text)
        if self._pending_bytes > MAX_PENDING_BYTES or (
                transport is not None and
                transport.get_write_buffer_size() > MAX_PENDING_BYTES):
            log.warning("signalr: dropping connection %s: it is not reading (backlog over "
                        "%d bytes)", self.id, MAX_PENDING_BYTES)
            self._pending.clear()
            self._pending_bytes = 0
            self.closed = True
            self._wake.set()
            # A close frame would sit behind the backlog it cannot drain: cut the socket;
            # the read loop then ends and the connection leaves its hub and groups.
            if transport is not None:
                transport.abort()
            return False
        self._wake.set()
        return True

    def close(self, final_frame: str | None = None) -> None:
        """Flush what is queued (plus ``final_frame``) and close the socket."""
        if self.closed:
            return
        if final_frame:
            self._pending.append(final_frame)
        self.closed = True
        self._wake.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._pending:
                    batch = "".join(self._pending)
                    self._pending.clear()
                    self._pending_bytes = 0
                    self._writing = True  # until sent, later frames queue behind this one
                    try:
                        await self.ws.send_str(batch)
                    finally:
                        self._writing = False
                    self.last_sent = time.monotonic()
                if self.closed:
                    break
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            # The peer vanished mid-write (abrupt disconnect): nothing left to deliver.
            self.closed = True
        finally:
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def wait_closed(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


@dataclass
class Pending:
    """A negotiated connection waiting for its WebSocket (negotiate → connect)."""

    connection_id: str
    hub: str
    user_id: str | None
    expires: float


@dataclass
class HubState:
    connections: dict[str, Connection] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    user_connections: dict[str, set[str]] = field(default_factory=dict)
    # user -> group -> expiry (monotonic) or None: memberships that follow the user.
    user_groups: dict[str, dict[str, float | None]] = field(default_factory=dict)


class SignalRService:
    """All hubs of one emulated SignalR Service resource."""

    def __init__(self, *, negotiate_ttl: float = 120.0) -> None:
        self.hubs: dict[str, HubState] = {}
        self.pending: dict[str, Pending] = {}
        self.negotiate_ttl = negotiate_ttl
        # What Azure bills: outbound messages to clients, counted in 2 KB units (inbound
        # REST publishes are free); REST publishes are counted for the cost model too.
        self.stats: dict[str, int] = {"rest_publishes": 0, "messages_out": 0,
                                      "message_units_2kb": 0}

    def metrics(self) -> dict[str, int]:
        return dict(self.stats)

    def hub(self, name: str) -> HubState:
        # Hub names are case-insensitive in the service.
        return self.hubs.setdefault(name.lower(), HubState())

    # negotiate → connect
    def negotiate(self, hub: str, user_id: str | None) -> Pending:
        now = time.monotonic()
        for token in [t for t, p in self.pending.items() if p.expires < now]:
            del self.pending[token]
        pending = Pending(connection_id=secrets.token_urlsafe(16), hub=hub.lower(),
                          user_id=user_id, expires=now + self.negotiate_ttl)
        return pending

    def remember(self, token: str, pending: Pending) -> None:
        self.pending[token] = pending

    def claim(self, token: str) -> Pending | None:
        pending = self.pending.pop(token, None)
        if pending is None or pending.expires < time.monotonic():
            return None
        return pending

    def attach(self, conn: Connection) -> None:
        state = self.hub(conn.hub)
        state.connections[conn.id] = conn
        if conn.user_id is not None:
            state.user_connections.setdefault(conn.user_id, set()).add(conn.id)
            now = time.monotonic()
            for group, expiry in list(state.user_groups.get(conn.user_id, {}).items()):
                if expiry is None or expiry > now:
                    self._join(state, group, conn)

    def detach(self, conn: Connection) -> None:
        state = self.hub(conn.hub)
        if state.connections.get(conn.id) is not conn:
            return
        del state.connections[conn.id]
        for group in conn.groups:
            members = state.groups.get(group)
            if members is not None:
                members.discard(conn.id)
                if not members:
                    del state.groups[group]
        if conn.user_id is not None:
            ids = state.user_connections.get(conn.user_id)
            if ids is not None:
                ids.discard(conn.id)
                if not ids:
                    del state.user_connections[conn.user_id]

    # groups
    @staticmethod
    def _join(state: HubState, group: str, conn: Connection) -> None:
        state.groups.setdefault(group, set()).add(conn.id)
        conn.groups.add(group)

    def add_connection_to_group(self, hub: str, group: str, connection_id: str) -> bool:
        state = self.hub(hub)
        conn = state.connections.get(connection_id)
        if conn is None:
            return False
        self._join(state, group, conn)
        return True

    def remove_connection_from_group(self, hub: str, group: str, connection_id: str) -> None:
        state = self.hub(hub)
        conn = state.connections.get(connection_id)
        members = state.groups.get(group)
        if members is not None:
            members.discard(connection_id)
            if not members:
                del state.groups[group]
        if conn is not None:
            conn.groups.discard(group)

    def remove_connection_from_all_groups(self, hub: str, connection_id: str) -> None:
        conn = self.hub(hub).connections.get(connection_id)
        for group in list(conn.groups if conn else ()):
            self.remove_connection_from_group(hub, group, connection_id)

    def add_user_to_group(self, hub: str, group: str, user_id: str,
                          ttl_seconds: int | None) -> None:
        state = self.hub(hub)
        expiry = None if ttl_seconds is None else time.monotonic() + ttl_seconds
        state.user_groups.setdefault(user_id, {})[group] = expiry
        for cid in state.user_connections.get(user_id, ()):
            self._join(state, group, state.connections[cid])

    def remove_user_from_group(self, hub: str, group: str | None, user_id: str) -> None:
        state = self.hub(hub)
        memberships = state.user_groups.get(user_id, {})
        groups = list(memberships) if group is None else [group]
        for g in groups:
            memberships.pop(g, None)
            for cid in list(state.user_connections.get(user_id, ())):
                self.remove_connection_from_group(hub, g, cid)
        if not memberships:
            state.user_groups.pop(user_id, None)

    # sending
    def _deliver(self, conns: Iterable[Connection], text: str) -> int:
        frame = Frame(text)
        sent = sum(1 for conn in conns if conn.push(frame))
        self._count(sent, text)
        return sent

    def _count(self, sent: int, text: str) -> None:
        self.stats["rest_publishes"] += 1
        self.stats["messages_out"] += sent
        self.stats["message_units_2kb"] += sent * max(1, -(-len(text.encode()) // 2048))

    def send_all(self, hub: str, frame: str, excluded: set[str]) -> int:
        conns = self.hub(hub).connections.values()
        return self._deliver((c for c in conns if c.id not in excluded), frame)

    def send_group(self, hub: str, group: str, frame: str, excluded: set[str]) -> int:
        state = self.hub(hub)
        ids = state.groups.get(group, ())
        return self._deliver((state.connections[i] for i in list(ids)
                              if i not in excluded and i in state.connections), frame)

    def send_user(self, hub: str, user_id: str, frame: str) -> int:
        state = self.hub(hub)
        ids = state.user_connections.get(user_id, ())
        return self._deliver((state.connections[i] for i in list(ids)), frame)

    def send_connection(self, hub: str, connection_id: str, frame: str) -> bool:
        conn = self.hub(hub).connections.get(connection_id)
        sent = conn is not None and conn.push(frame)
        self._count(int(sent), frame)
        return sent

    def close_connection(self, hub: str, connection_id: str, reason: str | None) -> bool:
        conn = self.hub(hub).connections.get(connection_id)
        if conn is None:
            return False
        conn.close(protocol.close_frame(reason or "Connection closed by the server"))
        return True

    def all_connections(self) -> list[Connection]:
        return [c for state in self.hubs.values() for c in state.connections.values()]
