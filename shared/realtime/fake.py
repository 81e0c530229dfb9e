"""``InMemoryRealtime``: the Realtime port without a service, for tests and unconfigured runs.

It routes messages like the service does (groups, users, all) to in-memory connections
made with ``connect()``, so the same contract tests exercise it and ``RestRealtime``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from shared.errors import NotFound, Unavailable
from shared.realtime.port import ConnectionInfo

_ids = itertools.count(1)


@dataclass
class FakeConnection:
    id: str
    user_id: str | None
    groups: set[str] = field(default_factory=set)
    received: list[tuple[str, list[Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    kind: str  # "group" | "user" | "all"
    name: str | None
    target: str
    args: list[Any]


class InMemoryRealtime:
    def __init__(self, hub: str = "cloudops", *, configured: bool = True) -> None:
        self.hub = hub
        self.configured = configured
        self.sent: list[Sent] = []
        self.connections: dict[str, FakeConnection] = {}
        self._lock = threading.Lock()

    def connect(self, user_id: str | None = None) -> FakeConnection:
        conn = FakeConnection(id=f"fake-{next(_ids)}", user_id=user_id)
        with self._lock:
            self.connections[conn.id] = conn
        return conn

    def disconnect(self, conn: FakeConnection) -> None:
        with self._lock:
            self.connections.pop(conn.id, None)

    def _deliver(self, sent: Sent, match: Any) -> bool:
        with self._lock:
            self.sent.append(sent)
            for conn in self.connections.values():
                if match(conn):
                    conn.received.append((sent.target, list(sent.args)))
        return True

    def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        return self._deliver(Sent("group", group, target, args), lambda c: group in c.groups)

    def send_to_user(self, user_id: str, target: str, args: list[Any]) -> bool:
        return self._deliver(Sent("user", user_id, target, args),
                             lambda c: c.user_id == user_id)

    def send_to_all(self, target: str, args: list[Any]) -> bool:
        return self._deliver(Sent("all", None, target, args), lambda c: True)

    def add_to_group(self, group: str, connection_id: str) -> None:
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is None:
                raise NotFound("no such real-time connection", field="connectionId")
            conn.groups.add(group)

    def remove_from_group(self, group: str, connection_id: str) -> None:
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is not None:
                conn.groups.discard(group)

    def negotiate(self, user_id: str | None, ttl: int = 3600) -> ConnectionInfo:
        if not self.configured:
            raise Unavailable("real-time updates are not configured "
                              "(set AzureSignalRConnectionString)")
        return {"url": f"memory://realtime/client/?hub={self.hub}",
                "accessToken": f"fake-token-for-{user_id or 'anonymous'}"}

    def messages(self, kind: str | None = None, name: str | None = None) -> list[Sent]:
        return [s for s in self.sent
                if (kind is None or s.kind == kind) and (name is None or s.name == name)]
