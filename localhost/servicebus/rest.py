"""The Service Bus REST send API's wire format: SAS tokens and ``BrokerProperties``.

Follows the documented REST "Send Message" operation: the token is
``SharedAccessSignature sr=<url-encoded resource>&sig=<base64 HMAC-SHA256>&se=<unix expiry>
&skn=<key name>``, signed over ``<url-encoded resource>\\n<expiry>``; broker properties ride
in a JSON ``BrokerProperties`` header and custom properties as plain headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote

from aiohttp import web

from localhost.servicebus.broker import BrokeredMessage

MAX_MESSAGE_BYTES = 256 * 1024  # Standard tier message size limit

# Headers that are transport, not custom message properties.
_STANDARD_HEADERS = {
    "host", "authorization", "brokerproperties", "content-type", "content-length",
    "accept", "accept-encoding", "user-agent", "connection", "expect", "transfer-encoding",
    "date", "x-ms-version", "keep-alive", "x-ms-client-request-id", "traceparent",
}


class RestError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = {400: "Bad request", 401: "Unauthorized", 413: "Payload too large",
                      503: "Service unavailable"}.get(status, "Error")


def sas_signature(resource: str, expiry: int, key: str) -> str:
    encoded = quote(resource, safe="")
    digest = hmac.new(key.encode(), f"{encoded}\n{expiry}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_sas(request: web.Request, key_name: str, key: str) -> None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("SharedAccessSignature "):
        raise RestError(401, "missing SharedAccessSignature authorization")
    fields = {k: v[0] for k, v in parse_qs(header.split(" ", 1)[1]).items()}
    resource, sig, expiry, name = (fields.get("sr"), fields.get("sig"), fields.get("se"),
                                   fields.get("skn"))
    if not (resource and sig and expiry and name):
        raise RestError(401, "SAS token needs sr, sig, se and skn")
    if name != key_name:
        raise RestError(401, f"unknown SharedAccessKeyName {name!r}")
    try:
        expires = int(expiry)
    except ValueError:
        raise RestError(401, "SAS token expiry (se) is not a number") from None
    if expires < time.time():
        raise RestError(401, "SAS token has expired")
    if not hmac.compare_digest(sas_signature(resource, expires, key), sig):
        raise RestError(401, "SAS signature does not match")
    if not str(request.url).lower().startswith(resource.lower().rstrip("/")):
        raise RestError(401, "SAS token is for a different resource")


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise RestError(400, f"BrokerProperties.{name} must be a date string")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RestError(400, f"BrokerProperties.{name} is not a date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(props: Mapping[str, Any], name: str) -> str | None:
    value = props.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RestError(400, f"BrokerProperties.{name} must be a string")
    if len(value) > 128 and name in ("MessageId", "SessionId"):
        raise RestError(400, f"BrokerProperties.{name} is longer than 128 characters")
    return value


def message_from_rest(headers: Mapping[str, str], body: bytes) -> BrokeredMessage:
    raw = headers.get("BrokerProperties") or "{}"
    try:
        props = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RestError(400, f"BrokerProperties header is not JSON: {exc}") from None
    if not isinstance(props, dict):
        raise RestError(400, "BrokerProperties header must be a JSON object")
    ttl = props.get("TimeToLive")
    if ttl is not None and (not isinstance(ttl, (int, float)) or ttl <= 0):
        raise RestError(400, "BrokerProperties.TimeToLive must be a positive number of seconds")
    scheduled = props.get("ScheduledEnqueueTimeUtc")
    custom: dict[str, Any] = {}
    for key, value in headers.items():
        if key.lower() in _STANDARD_HEADERS:
            continue
        try:
            custom[key] = json.loads(value)
        except json.JSONDecodeError:
            custom[key] = value
    content_type = headers.get("Content-Type") or _text(props, "ContentType")
    return BrokeredMessage(
        body=body, message_id=_text(props, "MessageId") or "",
        session_id=_text(props, "SessionId"), content_type=content_type,
        correlation_id=_text(props, "CorrelationId"), subject=_text(props, "Label"),
        reply_to=_text(props, "ReplyTo"), reply_to_session_id=_text(props, "ReplyToSessionId"),
        to=_text(props, "To"), partition_key=_text(props, "PartitionKey"),
        application_properties=custom,
        time_to_live=timedelta(seconds=ttl) if ttl else None,
        scheduled_enqueue_time=_time(scheduled, "ScheduledEnqueueTimeUtc") if scheduled
        else None)
