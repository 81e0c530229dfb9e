"""The port: one message shape and the ``TaskBus`` protocol every adapter implements."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class BusError(Exception):
    """Sending failed for good (after retries, or refused by the broker)."""


@dataclass(frozen=True)
class BusMessage:
    """A task message. ``session_id`` orders it (environment id); ``message_id`` dedupes it
    (task id); ``body`` is JSON."""

    session_id: str
    message_id: str
    body: dict[str, Any]
    content_type: str = "application/json"
    application_properties: dict[str, str | int | float | bool] = field(default_factory=dict)
    scheduled_enqueue_time: datetime | None = None
    subject: str | None = None
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("BusMessage.session_id is required (the queue uses sessions)")
        if not self.message_id:
            raise ValueError("BusMessage.message_id is required (duplicate detection)")
        if len(self.session_id) > 128 or len(self.message_id) > 128:
            raise ValueError("session_id and message_id are limited to 128 characters")
        if self.scheduled_enqueue_time is not None and \
                self.scheduled_enqueue_time.tzinfo is None:
            raise ValueError("scheduled_enqueue_time must be timezone-aware")

    def body_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), default=str).encode("utf-8")


class TaskBus(Protocol):
    """Sends messages to the task queue. ``send`` is synchronous and thread-safe."""

    def send(self, message: BusMessage) -> None: ...

    async def send_async(self, message: BusMessage) -> None: ...

    def close(self) -> None: ...
