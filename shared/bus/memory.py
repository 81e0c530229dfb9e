"""An in-memory ``TaskBus`` fake for tests: records what was sent, dedupes like the broker."""

from __future__ import annotations

import threading

from shared.bus.port import BusMessage


class InMemoryBus:
    def __init__(self) -> None:
        self.sent: list[BusMessage] = []
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def send(self, message: BusMessage) -> None:
        with self._lock:
            if message.message_id in self._ids:
                return  # duplicate detection: accepted and dropped
            self._ids.add(message.message_id)
            self.sent.append(message)

    async def send_async(self, message: BusMessage) -> None:
        self.send(message)

    def close(self) -> None:
        return None
