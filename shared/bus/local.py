"""The local adapter: the local host's Service Bus emulator over its REST send API.

The host puts a connection string like
``Endpoint=http://127.0.0.1:7071/servicebus/;SharedAccessKeyName=localhost;
SharedAccessKey=<key>;UseDevelopmentEmulator=true`` into the app's environment; this
adapter POSTs ``{Endpoint}{queue}/messages`` with a SAS token and ``BrokerProperties``,
exactly the Service Bus REST "Send Message" call (see ``localhost/servicebus/extension.py``).
Connection failures and 5xx are retried with backoff; 4xx are refusals.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared.bus.port import BusError, BusMessage
from shared.httpclient import HTTPFailure, keep_alive


class _Transient(BusError):
    """Unreachable or 5xx: worth another attempt (the last one is raised as is)."""


def parse_connection_string(value: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in value.split(";"):
        if "=" in item:
            key, _, val = item.partition("=")
            parts[key.strip().lower()] = val.strip()
    return parts


def is_local_emulator(connection_string: str | None) -> bool:
    if not connection_string:
        return False
    parts = parse_connection_string(connection_string)
    return parts.get("usedevelopmentemulator", "").lower() == "true" and \
        parts.get("endpoint", "").startswith(("http://", "https://"))


def sas_token(resource: str, key_name: str, key: str, ttl: int = 3600) -> str:
    expiry = int(time.time()) + ttl
    encoded = quote(resource, safe="")
    signature = base64.b64encode(hmac.new(key.encode(), f"{encoded}\n{expiry}".encode(),
                                          hashlib.sha256).digest()).decode()
    return (f"SharedAccessSignature sr={encoded}&sig={quote(signature, safe='')}"
            f"&se={expiry}&skn={key_name}")


class LocalServiceBus:
    def __init__(self, queue: str, connection_string: str, *, attempts: int = 4,
                 timeout: float = 10.0) -> None:
        parts = parse_connection_string(connection_string)
        endpoint = parts.get("endpoint", "")
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError("local Service Bus connection string needs an http Endpoint")
        self.url = endpoint.rstrip("/") + f"/{quote(queue, safe='')}/messages"
        self._target = urlsplit(self.url).path
        self._key_name = parts.get("sharedaccesskeyname", "")
        self._key = parts.get("sharedaccesskey", "")
        self._attempts = attempts
        self._timeout = timeout

    def _request(self, message: BusMessage) -> tuple[bytes, dict[str, str]]:
        props: dict[str, object] = {"SessionId": message.session_id,
                                    "MessageId": message.message_id}
        if message.scheduled_enqueue_time is not None:
            props["ScheduledEnqueueTimeUtc"] = format_datetime(
                message.scheduled_enqueue_time, usegmt=True)
        if message.subject:
            props["Label"] = message.subject
        if message.correlation_id:
            props["CorrelationId"] = message.correlation_id
        headers = {"Authorization": sas_token(self.url, self._key_name, self._key),
                   "BrokerProperties": json.dumps(props),
                   "Content-Type": message.content_type}
        for name, value in message.application_properties.items():
            headers[name] = json.dumps(value)
        return message.body_bytes(), headers

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        # Header names go out as written: custom property names keep their case. The
        # process's keep-alive connections to the emulator (a send is on every task's
        # path: no per-call URL parsing or header objects), shared by every bus built
        # per request, so one never closed leaves nothing behind.
        reply = keep_alive(self.url, self._timeout).request(
            "POST", self._target, headers, body)
        return reply.status, reply.body.decode("utf-8", errors="replace")

    def send(self, message: BusMessage) -> None:
        body, headers = self._request(message)
        for attempt in Retrying(stop=stop_after_attempt(self._attempts),
                                wait=wait_random_exponential(multiplier=0.1, max=2.0),
                                retry=retry_if_exception_type(_Transient), reraise=True):
            with attempt:
                try:
                    status, detail = self._post(body, headers)
                except (OSError, HTTPFailure) as exc:
                    raise _Transient(f"local Service Bus unreachable at {self.url}: {exc}") \
                        from exc
                if status >= 500:
                    raise _Transient(f"local Service Bus answered {status}: {detail}")
                if status >= 300:
                    raise BusError(f"local Service Bus answered {status}: {detail}")

    async def send_async(self, message: BusMessage) -> None:
        await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        return None
