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
import http.client
import json
import random
import time
from email.utils import format_datetime
from urllib.parse import quote, urlsplit

from shared.bus.port import BusError, BusMessage


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
        # http.client keeps header names as written: custom property names keep their case.
        # A connection per send: callers may build a bus per request and never close it,
        # so nothing may outlive the call (~500-900 sends/s here is far above the need).
        parts = urlsplit(self.url)
        connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                            else http.client.HTTPConnection)
        conn = connection_class(parts.netloc, timeout=self._timeout)
        try:
            conn.request("POST", parts.path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", errors="replace")
        finally:
            conn.close()

    def send(self, message: BusMessage) -> None:
        body, headers = self._request(message)
        for attempt in range(1, self._attempts + 1):
            try:
                status, detail = self._post(body, headers)
            except OSError as exc:
                if attempt == self._attempts:
                    raise BusError(f"local Service Bus unreachable at {self.url}: {exc}") \
                        from exc
            else:
                if status < 300:
                    return
                if status < 500 or attempt == self._attempts:
                    raise BusError(f"local Service Bus answered {status}: {detail}")
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))

    async def send_async(self, message: BusMessage) -> None:
        await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        return None
