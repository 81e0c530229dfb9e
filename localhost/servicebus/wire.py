"""Brokered messages as the worker sees them, and as the host saves them across restarts.

``to_function_argument`` builds ``azure.functions.ServiceBusMessage`` with the values and
the trigger metadata the Functions host sends (``MessageId``, ``SessionId``,
``DeliveryCount``, ``SequenceNumber``, ``EnqueuedTimeUtc``, ``ApplicationProperties``/
``UserProperties``, ...), field for field as the library's converter would decode them
(a test checks that they agree); going through the converter itself would re-parse every
timestamp with ``strptime`` and cost most of the emulator's throughput. Parameters
annotated ``str`` or ``bytes`` get the body, as the worker's converter does.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessage

from localhost.functions import FunctionInfo
from localhost.servicebus.broker import BrokeredMessage


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timespan(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02}:{minutes:02}:{secs:02}" if days else \
        f"{hours:02}:{minutes:02}:{secs:02}"


def trigger_metadata(message: BrokeredMessage) -> dict[str, meta.Datum]:
    def text(value: str | None) -> meta.Datum | None:
        return meta.Datum(value, "string") if value is not None else None

    properties = json.dumps(message.application_properties, default=str)
    fields: dict[str, meta.Datum | None] = {
        "MessageId": text(message.message_id),
        "SessionId": text(message.session_id),
        "ContentType": text(message.content_type),
        "CorrelationId": text(message.correlation_id),
        "Label": text(message.subject),
        "Subject": text(message.subject),
        "ReplyTo": text(message.reply_to),
        "ReplyToSessionId": text(message.reply_to_session_id),
        "To": text(message.to),
        "PartitionKey": text(message.partition_key),
        "LockToken": text(message.lock_token),
        "DeliveryCount": meta.Datum(message.delivery_count, "int"),
        "SequenceNumber": meta.Datum(message.sequence_number, "int"),
        "EnqueuedSequenceNumber": meta.Datum(message.sequence_number, "int"),
        "State": meta.Datum(message.state, "int"),
        "EnqueuedTimeUtc": text(_iso(message.enqueued_time)) if message.enqueued_time
        else None,
        "LockedUntil": text(_iso(message.locked_until)) if message.locked_until else None,
        "ScheduledEnqueueTimeUtc": text(_iso(message.scheduled_enqueue_time))
        if message.scheduled_enqueue_time else None,
        "ExpiresAtUtc": text(_iso(message.enqueued_time + message.time_to_live))
        if message.enqueued_time and message.time_to_live else None,
        "TimeToLive": text(_timespan(message.time_to_live)) if message.time_to_live
        else None,
        "DeadLetterReason": text(message.dead_letter_reason),
        "DeadLetterErrorDescription": text(message.dead_letter_description),
        "DeadLetterSource": text(message.dead_letter_source),
        "ApplicationProperties": meta.Datum(properties, "json"),
        "UserProperties": meta.Datum(properties, "json"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def to_function_argument(fn: FunctionInfo, message: BrokeredMessage) -> Any:
    annotation = fn.annotations.get(str(fn.trigger.get("name")))
    if annotation in (str, "str"):
        return message.body.decode("utf-8")
    if annotation in (bytes, "bytes"):
        return message.body
    decoded = to_library_message(message)
    if str(fn.trigger.get("cardinality", "one")).lower() == "many":
        return [decoded]  # batches of one: ordering per session stays strict
    return decoded


def to_library_message(message: BrokeredMessage) -> ServiceBusMessage:
    properties = dict(message.application_properties)
    return ServiceBusMessage(
        body=message.body, trigger_metadata=trigger_metadata(message),
        application_properties=properties, content_type=message.content_type,
        correlation_id=message.correlation_id,
        dead_letter_error_description=message.dead_letter_description,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_source=message.dead_letter_source,
        delivery_count=message.delivery_count,
        enqueued_sequence_number=message.sequence_number,
        enqueued_time_utc=message.enqueued_time,
        expires_at_utc=message.enqueued_time + message.time_to_live
        if message.enqueued_time and message.time_to_live else None,
        label=message.subject, locked_until=message.locked_until,
        lock_token=message.lock_token, message_id=message.message_id,
        partition_key=message.partition_key, reply_to=message.reply_to,
        reply_to_session_id=message.reply_to_session_id,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
        sequence_number=message.sequence_number, session_id=message.session_id,
        state=message.state, subject=message.subject, time_to_live=message.time_to_live,
        to=message.to, transaction_partition_key=None, user_properties=properties)


def to_json(message: BrokeredMessage) -> dict[str, Any]:
    data = dict(message.__dict__)
    data["body"] = base64.b64encode(message.body).decode()
    for key in ("scheduled_enqueue_time", "enqueued_time", "locked_until"):
        data[key] = data[key].isoformat() if data[key] else None
    data["time_to_live"] = message.time_to_live.total_seconds() if message.time_to_live \
        else None
    return data


def from_json(data: dict[str, Any]) -> BrokeredMessage:
    values = dict(data)
    values["body"] = base64.b64decode(values["body"])
    for key in ("scheduled_enqueue_time", "enqueued_time", "locked_until"):
        values[key] = datetime.fromisoformat(values[key]) if values.get(key) else None
    ttl = values.get("time_to_live")
    values["time_to_live"] = timedelta(seconds=ttl) if ttl else None
    values["lock_token"] = values["locked_until"] = None
    values["sequence_number"] = 0
    return BrokeredMessage(**values)
