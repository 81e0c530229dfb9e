"""The app's one port for real-time messages to browsers (Azure SignalR Service).

Publishing (``send_*``) is best effort: it returns False after logging when the service
is unreachable and never raises, because clients re-read state from the API when they
(re)connect. Membership changes and ``negotiate`` do raise, since their callers answer a
user who needs to know.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict


class ConnectionInfo(TypedDict):
    url: str
    accessToken: str


class Realtime(Protocol):
    hub: str

    def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        """Invoke ``target(*args)`` on every connection in ``group``."""

    def send_to_user(self, user_id: str, target: str, args: list[Any]) -> bool:
        """Invoke ``target(*args)`` on every connection of ``user_id``."""

    def send_to_all(self, target: str, args: list[Any]) -> bool:
        """Invoke ``target(*args)`` on every connection of the hub."""

    def add_to_group(self, group: str, connection_id: str) -> None:
        """Raise NotFound when the connection is unknown, Unavailable when unreachable."""

    def remove_from_group(self, group: str, connection_id: str) -> None:
        """Raise Unavailable when the service is unreachable."""

    def negotiate(self, user_id: str | None, ttl: int = 3600) -> ConnectionInfo:
        """Where and how a client connects: ``{url, accessToken}`` valid ``ttl`` seconds."""
