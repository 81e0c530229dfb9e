"""The Service Bus sender's messages have what the session-enabled `tasks` queue in the Bicep
needs — session id, message id (duplicate detection), content type, trace properties —
checked on the SDK message object without a live namespace (Service Bus speaks AMQP;
there is no local stand-in to send to)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider

from shared.bus.azure import AzureServiceBus, to_servicebus_message
from shared.bus.factory import make_bus
from shared.bus.port import BusMessage
from shared.settings import Settings
from shared.telemetry import extract_trace, inject_trace
from tests.azure.bicep import body, parse
from tests.conftest import ROOT


def test_message_carries_session_message_id_content_type_and_trace_context() -> None:
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("POST /deployments") as span:
        properties = dict(inject_trace({"operation": "deploy"}))
    when = datetime.now(UTC) + timedelta(minutes=5)
    message = to_servicebus_message(BusMessage(
        session_id="env-42", message_id="task-7", body={"taskId": "task-7"},
        application_properties=properties, scheduled_enqueue_time=when))
    assert message.session_id == "env-42"
    assert message.message_id == "task-7"
    assert message.content_type == "application/json"
    assert json.loads(b"".join(message.body)) == {"taskId": "task-7"}
    assert message.scheduled_enqueue_time_utc == when
    props = message.application_properties or {}
    assert props["operation"] == "deploy"
    # the receiver continues the same trace from the message's properties
    from opentelemetry import trace

    carried = trace.get_current_span(extract_trace(props)).get_span_context()
    assert carried.trace_id == span.get_span_context().trace_id
    assert carried.span_id == span.get_span_context().span_id
    provider.shutdown()


@pytest.mark.parametrize("field", ["session_id", "message_id"])
def test_a_message_without_session_or_message_id_is_refused_before_sending(
        field: str) -> None:
    values = {"session_id": "env", "message_id": "task", "body": {}}
    values[field] = ""
    with pytest.raises(ValueError, match=field):
        BusMessage(**values)  # type: ignore[arg-type]


def test_managed_identity_settings_from_the_bicep_build_a_namespace_sender() -> None:
    bicep = parse(ROOT / "infra" / "bicep" / "modules" / "servicebus.bicep")
    assert body(bicep.symbols("resource")["queue"])["properties"]["requiresSession"] is True
    bus = make_bus(Settings.from_env({
        "ServiceBusConnection__fullyQualifiedNamespace": "sb-cloudops.servicebus.windows.net",
        "CLOUDOPS_TASK_QUEUE": "tasks"}))
    assert isinstance(bus, AzureServiceBus)
    assert bus.queue == "tasks"
    bus.close()
