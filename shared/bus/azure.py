"""The Azure adapter: ``azure-servicebus`` with managed identity or a connection string.

The SDK already retries transient failures (``retry_total``, exponential backoff); on top
of that a broken link is dropped and reopened once, since a long-idle sender's AMQP link
can be closed by the service. Refusals (auth, missing entity, size) are not retried.
"""

from __future__ import annotations

import asyncio
import threading

from azure.core.credentials import TokenCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import (
    ServiceBusCommunicationError,
    ServiceBusConnectionError,
    ServiceBusError,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from shared.bus.port import BusError, BusMessage


class _Unreachable(BusError):
    """The connection broke: worth one more attempt on a new one."""


def to_servicebus_message(message: BusMessage) -> ServiceBusMessage:
    """The SDK message for ``message`` (kept separate so its shape can be tested offline)."""
    return ServiceBusMessage(
        message.body_bytes(), session_id=message.session_id, message_id=message.message_id,
        content_type=message.content_type,
        # a comprehension, so it is typed as the SDK's dict[str | bytes, ...] (invariant)
        application_properties={k: v for k, v in message.application_properties.items()}
        or None,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
        subject=message.subject, correlation_id=message.correlation_id)


class AzureServiceBus:
    """Sends to one queue. Thread-safe (the SDK sender is not, so sends are serialised)."""

    def __init__(self, queue: str, *, connection_string: str | None = None,
                 namespace: str | None = None, credential: TokenCredential | None = None,
                 retry_total: int = 3) -> None:
        if not connection_string and not namespace:
            raise ValueError("AzureServiceBus needs a connection string or a namespace")
        self.queue = queue
        self._connection_string = connection_string
        self._namespace = namespace
        self._credential = credential
        self._retry_total = retry_total
        self._lock = threading.Lock()
        self._client: ServiceBusClient | None = None
        self._sender: ServiceBusSender | None = None

    def _open(self) -> ServiceBusSender:
        if self._sender is None:
            if self._connection_string:
                self._client = ServiceBusClient.from_connection_string(
                    self._connection_string, retry_total=self._retry_total)
            else:
                credential = self._credential
                if credential is None:
                    from azure.identity import DefaultAzureCredential

                    credential = DefaultAzureCredential()
                self._client = ServiceBusClient(str(self._namespace), credential,
                                                retry_total=self._retry_total)
            self._sender = self._client.get_queue_sender(self.queue)
        return self._sender

    def _reset(self) -> None:
        for closable in (self._sender, self._client):
            try:
                if closable is not None:
                    closable.close()
            except ServiceBusError:
                pass  # already broken; we are replacing it
        self._sender = self._client = None

    def send(self, message: BusMessage) -> None:
        with self._lock:
            # a broken connection is replaced and the send tried once more, at once
            for attempt in Retrying(stop=stop_after_attempt(2), reraise=True,
                                    retry=retry_if_exception_type(_Unreachable)):
                with attempt:
                    try:
                        self._open().send_messages(to_servicebus_message(message))
                    except (ServiceBusConnectionError, ServiceBusCommunicationError) as exc:
                        self._reset()
                        raise _Unreachable(f"Service Bus unreachable: {exc}") from exc
                    except ServiceBusError as exc:
                        raise BusError(f"Service Bus refused the message: {exc}") from exc

    async def send_async(self, message: BusMessage) -> None:
        await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        with self._lock:
            self._reset()
